//! Chat templates rendered with minijinja the way transformers renders them with Jinja2:
//! `trim_blocks` and `lstrip_blocks` on, loop controls, Python string methods
//! (`.strip()`, `.startswith()`, `.split()`, ...), `raise_exception`, and a `tojson` that
//! writes what Python's `json.dumps(x, ensure_ascii=False)` writes (", " and ": "
//! separators, non-ASCII kept, optional `indent`).

use minijinja::syntax::SyntaxConfig;
use minijinja::value::{Kwargs, Serde, ValueKind};
use minijinja::{Environment, Error, ErrorKind, Value};
use serde::Serialize;

use crate::error::{ModelError, Result};

/// Options of one rendering, mirroring `apply_chat_template`'s keyword arguments.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ChatTemplateOptions {
    /// Append the assistant header so the model continues as the assistant. Default false
    /// (transformers' default).
    pub add_generation_prompt: bool,
    /// Tool (function) schemas, passed to the template as `tools`.
    pub tools: Option<serde_json::Value>,
    /// Extra variables (e.g. `enable_thinking`), passed as top-level template variables.
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// A compiled chat template.
#[derive(Debug, Clone)]
pub struct ChatTemplate {
    env: Environment<'static>,
}

impl ChatTemplate {
    /// Compile `source`.
    ///
    /// # Errors
    /// [`ModelError::ChatTemplate`] with minijinja's message (and line) on a syntax error.
    pub fn new(source: &str) -> Result<Self> {
        let mut env = Environment::new();
        let syntax = SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
            .map_err(template_err)?;
        env.set_syntax(syntax);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_filter("tojson", tojson);
        env.add_function("raise_exception", raise_exception);
        env.add_template_owned("chat", source.to_string())
            .map_err(template_err)?;
        Ok(Self { env })
    }

    /// Render `messages` (anything serialisable to a list of `{role, content, ...}` maps)
    /// with the given special tokens (`bos_token`, `eos_token`, ... as strings).
    ///
    /// # Errors
    /// [`ModelError::ChatTemplate`] when rendering fails or the template raises.
    pub fn render<M: Serialize>(
        &self,
        messages: &[M],
        special_tokens: &[(&str, &str)],
        options: &ChatTemplateOptions,
    ) -> Result<String> {
        let mut ctx = serde_json::Map::new();
        for (k, v) in special_tokens {
            ctx.insert(
                (*k).to_string(),
                serde_json::Value::String((*v).to_string()),
            );
        }
        for (k, v) in &options.extra {
            ctx.insert(k.clone(), v.clone());
        }
        let messages = serde_json::to_value(messages).map_err(|e| ModelError::ChatTemplate {
            message: format!("messages are not serialisable: {e}"),
        })?;
        ctx.insert("messages".into(), messages);
        ctx.insert(
            "add_generation_prompt".into(),
            serde_json::Value::Bool(options.add_generation_prompt),
        );
        if let Some(tools) = &options.tools {
            ctx.insert("tools".into(), tools.clone());
        }
        let template = self.env.get_template("chat").map_err(template_err)?;
        template
            .render(Value::from(Serde(&ctx)))
            .map_err(template_err)
    }
}

fn template_err(e: Error) -> ModelError {
    let mut message = e.to_string();
    if let Some(line) = e.line() {
        message.push_str(&format!(" (template line {line})"));
    }
    ModelError::ChatTemplate { message }
}

fn raise_exception(message: String) -> std::result::Result<Value, Error> {
    Err(Error::new(ErrorKind::InvalidOperation, message))
}

/// Python's `json.dumps(value, ensure_ascii=False, indent=indent)`.
fn tojson(value: Value, kwargs: Kwargs) -> std::result::Result<Value, Error> {
    let indent: Option<usize> = kwargs.get("indent")?;
    kwargs.assert_all_used()?;
    let mut out = String::new();
    write_json(&value, indent, 0, &mut out)?;
    Ok(Value::from_safe_string(out))
}

fn write_json(
    v: &Value,
    indent: Option<usize>,
    depth: usize,
    out: &mut String,
) -> std::result::Result<(), Error> {
    let newline = |out: &mut String, depth: usize| {
        if let Some(n) = indent {
            out.push('\n');
            out.push_str(&" ".repeat(n * depth));
        }
    };
    let item_sep = if indent.is_some() { "," } else { ", " };
    match v.kind() {
        ValueKind::Undefined | ValueKind::None => out.push_str("null"),
        ValueKind::Bool => out.push_str(if v.is_true() { "true" } else { "false" }),
        ValueKind::Number => {
            if let Some(i) = v.as_i64() {
                out.push_str(&i.to_string());
            } else {
                let f = f64::try_from(v.clone())?;
                out.push_str(&python_float(f));
            }
        }
        ValueKind::String => {
            let s = v.as_str().unwrap_or_default();
            out.push_str(
                &serde_json::to_string(s)
                    .map_err(|e| Error::new(ErrorKind::BadSerialization, e.to_string()))?,
            );
        }
        ValueKind::Seq | ValueKind::Iterable => {
            let items: Vec<Value> = v.try_iter()?.collect();
            if items.is_empty() {
                out.push_str("[]");
                return Ok(());
            }
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(item_sep);
                }
                newline(out, depth + 1);
                write_json(item, indent, depth + 1, out)?;
            }
            newline(out, depth);
            out.push(']');
        }
        ValueKind::Map => {
            let keys: Vec<Value> = v.try_iter()?.collect();
            if keys.is_empty() {
                out.push_str("{}");
                return Ok(());
            }
            out.push('{');
            for (i, key) in keys.iter().enumerate() {
                if i > 0 {
                    out.push_str(item_sep);
                }
                newline(out, depth + 1);
                let name = key
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| key.to_string());
                out.push_str(&serde_json::to_string(&name).unwrap_or_default());
                out.push_str(": ");
                write_json(&v.get_item(key)?, indent, depth + 1, out)?;
            }
            newline(out, depth);
            out.push('}');
        }
        _ => {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                format!("cannot serialise {} to json", v.kind()),
            ));
        }
    }
    Ok(())
}

/// Python's `repr` of a float as `json.dumps` writes it.
fn python_float(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f.is_infinite() {
        if f > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        }
    } else if f == f.trunc() && f.abs() < 1e16 {
        format!("{f:.1}")
    } else {
        format!("{f}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tojson_matches_python_json_dumps() {
        let t = ChatTemplate::new("{{ x | tojson }}|{{ x | tojson(indent=2) }}").unwrap();
        let mut extra = serde_json::Map::new();
        extra.insert(
            "x".into(),
            serde_json::json!({"a": [1, 2.5, "é\"<"], "b": null, "c": {}}),
        );
        let out = t
            .render::<serde_json::Value>(
                &[],
                &[],
                &ChatTemplateOptions {
                    extra,
                    ..Default::default()
                },
            )
            .unwrap();
        assert_eq!(
            out,
            "{\"a\": [1, 2.5, \"é\\\"<\"], \"b\": null, \"c\": {}}|{\n  \"a\": [\n    1,\n    2.5,\n    \"é\\\"<\"\n  ],\n  \"b\": null,\n  \"c\": {}\n}"
        );
    }

    #[test]
    fn raise_exception_is_an_error() {
        let t = ChatTemplate::new("{{ raise_exception('no system role') }}").unwrap();
        let err = t
            .render::<serde_json::Value>(&[], &[], &ChatTemplateOptions::default())
            .unwrap_err();
        assert!(err.to_string().contains("no system role"), "{err}");
    }

    #[test]
    fn syntax_error_names_the_line() {
        let err = ChatTemplate::new("ok\n{% if %}").unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
    }
}
