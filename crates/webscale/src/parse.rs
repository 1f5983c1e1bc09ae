//! Parsing LLM replies into the fields a stage needs (spec §4 "Parsing").
//!
//! Steps: strip a leading ```` ```json ```` / ```` ``` ```` fence and a trailing ```` ``` ````;
//! take strict JSON if the text is an object; else the substring from the first `{` to the last
//! `}`, as strict JSON, then leniently: single-quoted strings (Python dict literals, which the
//! reference code reads with `ast.literal_eval`), trailing commas, `True`/`False`/`None`.

use serde_json::{Map, Value};

/// A reply that cannot be used, with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(pub String);

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The JSON object in `reply` (see the module docs).
///
/// # Errors
/// [`ParseError`] when no object can be read.
pub fn parse_object(reply: &str) -> Result<Map<String, Value>, ParseError> {
    let mut text = reply.trim();
    if let Some(rest) = text.strip_prefix("```") {
        text = rest.strip_prefix("json").unwrap_or(rest);
        text = text.trim_end();
        text = text.strip_suffix("```").unwrap_or(text);
        text = text.trim();
    }
    if let Ok(Value::Object(m)) = serde_json::from_str::<Value>(text) {
        return Ok(m);
    }
    let (Some(start), Some(end)) = (text.find('{'), text.rfind('}')) else {
        return Err(ParseError("no JSON object in the reply".into()));
    };
    if end < start {
        return Err(ParseError("no JSON object in the reply".into()));
    }
    let inner = &text[start..=end];
    match serde_json::from_str::<Value>(inner) {
        Ok(Value::Object(m)) => return Ok(m),
        Ok(_) => return Err(ParseError("the reply is not a JSON object".into())),
        Err(_) => {}
    }
    let mut p = Lenient {
        s: inner.as_bytes(),
        src: inner,
        i: 0,
        depth: 0,
    };
    match p.value() {
        Ok(Value::Object(m)) => {
            p.ws();
            if p.i == p.s.len() {
                Ok(m)
            } else {
                Err(ParseError(format!(
                    "unexpected text after the object at byte {}",
                    p.i
                )))
            }
        }
        Ok(_) => Err(ParseError("the reply is not a JSON object".into())),
        Err(e) => Err(ParseError(e)),
    }
}

/// The string value of each of `keys` in `obj`.
///
/// # Errors
/// [`ParseError`] naming the first key that is missing or not a string.
pub fn string_fields(obj: &Map<String, Value>, keys: &[&str]) -> Result<Vec<String>, ParseError> {
    keys.iter()
        .map(|k| match obj.get(*k) {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(other) => Err(ParseError(format!(
                "key {k:?} is not a string: {}",
                clip(&other.to_string(), 80)
            ))),
            None => Err(ParseError(format!("key {k:?} is missing"))),
        })
        .collect()
}

/// A `"Y"`/`"N"` flag: trimmed, upper-cased, the first character decides.
///
/// # Errors
/// [`ParseError`] when it starts with neither.
pub fn yes_no(flag: &str, key: &str) -> Result<bool, ParseError> {
    match flag.trim().chars().next().map(|c| c.to_ascii_uppercase()) {
        Some('Y') => Ok(true),
        Some('N') => Ok(false),
        _ => Err(ParseError(format!(
            "key {key:?} must be Y or N, got {:?}",
            clip(flag, 40)
        ))),
    }
}

pub(crate) fn clip(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// Nesting limit of the lenient parser (replies are small objects).
const MAX_DEPTH: usize = 64;

/// A small parser for JSON with Python-literal leniencies.
struct Lenient<'a> {
    s: &'a [u8],
    src: &'a str,
    i: usize,
    depth: usize,
}

impl Lenient<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn err<T>(&self, what: &str) -> Result<T, String> {
        Err(format!("{what} at byte {}", self.i))
    }

    fn value(&mut self) -> Result<Value, String> {
        self.ws();
        let Some(&c) = self.s.get(self.i) else {
            return self.err("unexpected end");
        };
        match c {
            b'{' | b'[' => {
                self.depth += 1;
                if self.depth > MAX_DEPTH {
                    return self.err("nesting too deep");
                }
                let v = if c == b'{' {
                    self.object()
                } else {
                    self.array()
                };
                self.depth -= 1;
                v
            }
            b'"' | b'\'' => self.string().map(Value::String),
            _ => self.scalar(),
        }
    }

    fn object(&mut self) -> Result<Value, String> {
        self.i += 1;
        let mut m = Map::new();
        loop {
            self.ws();
            match self.s.get(self.i) {
                Some(b'}') => {
                    self.i += 1;
                    return Ok(Value::Object(m));
                }
                Some(b'"' | b'\'') => {
                    let k = self.string()?;
                    self.ws();
                    if self.s.get(self.i) != Some(&b':') {
                        return self.err("expected ':'");
                    }
                    self.i += 1;
                    let v = self.value()?;
                    m.insert(k, v);
                    self.ws();
                    match self.s.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b'}') => {}
                        _ => return self.err("expected ',' or '}'"),
                    }
                }
                _ => return self.err("expected a key or '}'"),
            }
        }
    }

    fn array(&mut self) -> Result<Value, String> {
        self.i += 1;
        let mut v = Vec::new();
        loop {
            self.ws();
            if self.s.get(self.i) == Some(&b']') {
                self.i += 1;
                return Ok(Value::Array(v));
            }
            v.push(self.value()?);
            self.ws();
            match self.s.get(self.i) {
                Some(b',') => self.i += 1,
                Some(b']') => {}
                _ => return self.err("expected ',' or ']'"),
            }
        }
    }

    fn string(&mut self) -> Result<String, String> {
        let quote = self.s[self.i];
        self.i += 1;
        let mut out = String::new();
        let mut run = self.i;
        while let Some(&c) = self.s.get(self.i) {
            if c == quote {
                out.push_str(&self.src[run..self.i]);
                self.i += 1;
                return Ok(out);
            }
            if c == b'\\' {
                out.push_str(&self.src[run..self.i]);
                let Some(&e) = self.s.get(self.i + 1) else {
                    return self.err("unterminated escape");
                };
                self.i += 2;
                match e {
                    b'n' => out.push('\n'),
                    b't' => out.push('\t'),
                    b'r' => out.push('\r'),
                    b'b' => out.push('\u{8}'),
                    b'f' => out.push('\u{c}'),
                    b'u' => {
                        let hex = self.src.get(self.i..self.i + 4).unwrap_or("");
                        let code = u32::from_str_radix(hex, 16)
                            .map_err(|_| format!("bad \\u escape at byte {}", self.i))?;
                        out.push(char::from_u32(code).unwrap_or('\u{fffd}'));
                        self.i += 4;
                    }
                    _ => {
                        // \" \' \\ \/ and Python's other escapes: the character itself.
                        let ch = self.src[self.i - 1..].chars().next().unwrap_or('\\');
                        out.push(ch);
                        self.i += ch.len_utf8() - 1;
                    }
                }
                run = self.i;
                continue;
            }
            self.i += 1;
        }
        self.err("unterminated string")
    }

    fn scalar(&mut self) -> Result<Value, String> {
        let start = self.i;
        while let Some(&c) = self.s.get(self.i) {
            if matches!(c, b',' | b'}' | b']') || c.is_ascii_whitespace() {
                break;
            }
            self.i += 1;
        }
        let word = &self.src[start..self.i];
        Ok(match word {
            "true" | "True" => Value::Bool(true),
            "false" | "False" => Value::Bool(false),
            "null" | "None" => Value::Null,
            _ => match serde_json::from_str::<Value>(word) {
                Ok(v @ Value::Number(_)) => v,
                _ => {
                    self.i = start;
                    return self.err("unexpected token");
                }
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenient_forms_parse() {
        for reply in [
            "```json\n{\"a\": \"x\", \"b\": \"Y\"}\n```",
            "{\"a\": \"x\", \"b\": \"Y\",}",
            "{'a': 'x', 'b': 'Y',}",
            "Sure! Here it is: {\"a\": \"x\", \"b\": \"Y\"} Hope this helps.",
            "```\n{'a': \"x\", \"b\": 'Y', 'c': [1, 2,], 'd': None}\n```",
        ] {
            let m = parse_object(reply).unwrap_or_else(|e| panic!("{reply}: {e}"));
            assert_eq!(m["a"], "x", "{reply}");
            assert_eq!(m["b"], "Y", "{reply}");
        }
        let m = parse_object("{'q': 'It\\'s \"quoted\"'}").unwrap();
        assert_eq!(m["q"], "It's \"quoted\"");
    }

    #[test]
    fn bad_forms_fail() {
        for reply in [
            "",
            "no json here",
            "[1, 2]",
            "{\"a\": }",
            "{'a': 'x'",
            "} {",
        ] {
            assert!(parse_object(reply).is_err(), "{reply:?}");
        }
        let m = parse_object("{\"a\": 1}").unwrap();
        assert!(string_fields(&m, &["a"]).is_err());
        assert!(string_fields(&m, &["b"]).unwrap_err().0.contains("missing"));
        assert!(yes_no(" yes", "k").unwrap());
        assert!(!yes_no("n", "k").unwrap());
        assert!(yes_no("maybe", "k").is_err());
        assert!(yes_no("", "k").is_err());
    }
}
