//! The fixture script: the rule-based replies of spec §6's CPU fixture experiment, as
//! [`ScriptedModel`]s (`backend = "scripted"` in a config).
//!
//! Rules (by stage, reading the document from the prompt):
//! - filter: `N` for a page containing `Home | About`, else `Y`;
//! - tagger: the domain from a keyword table; personas `students, general readers`, plus
//!   `researchers` when the text contains `Notably`; the domain `Astrology` for a text about a
//!   `horoscope` (rejected: not a label), and the persona string `students, aged 10-12,
//!   teachers` for a `classroom` text (split on commas into three);
//! - generator: from the first sentence `<Entity> was founded in <year>`, the question
//!   `For <persona>: <Entity> is a subject of this history. In what year was <Entity>
//!   founded?` with answer `<year>`; the first sentence of a text mentioning the `lighthouse
//!   keeper` copied as the question (a planted benchmark item); persona 1 of the `Kestrel`
//!   text asks a question that contains its answer; the `Marlow` text's reply is fenced JSON
//!   with a trailing comma; persona 0 of the `Tessel` text gets an unparseable reply; a
//!   text without a founding sentence gets `{}` (parse error);
//! - checker: `has_context = Y, answer_correctness = Y, info_leakage = N`, except
//!   `answer_correctness = N` for persona 0 of the `Orchid` text.

use crate::chat::{ChatRequest, LlmError};
use crate::scripted::ScriptedModel;

/// Keyword → domain, first match wins.
const KEYWORDS: [(&str, &str); 10] = [
    ("theorem", "Math"),
    ("compiler", "Coding"),
    ("engine", "Technology & Engineering"),
    ("parliament", "Social Science"),
    ("species", "Natural Science"),
    ("cuisine", "Travel & Lifestyle"),
    ("bank", "Commerce & Economics"),
    ("hospital", "Medicine & Health"),
    ("school", "Education"),
    ("telescope", "Natural Science"),
];

fn json(pairs: &[(&str, &str)]) -> String {
    let m: serde_json::Map<String, serde_json::Value> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), serde_json::Value::String(v.to_string())))
        .collect();
    serde_json::Value::Object(m).to_string()
}

/// The first `<Entity> was founded in <year>` of `text`.
pub fn founding(text: &str) -> Option<(String, String)> {
    let at = text.find(" was founded in ")?;
    let start = text[..at].rfind(". ").map(|i| i + 2).unwrap_or(0);
    let entity = text[start..at].trim().to_string();
    let year: String = text[at + " was founded in ".len()..]
        .chars()
        .take(4)
        .collect();
    (year.len() == 4 && year.chars().all(|c| c.is_ascii_digit()) && !entity.is_empty())
        .then_some((entity, year))
}

fn persona_of(req: &ChatRequest) -> String {
    let t = req.user_text();
    t.strip_prefix("You are ")
        .and_then(|r| r.split_once(". From the material"))
        .map(|(p, _)| p.to_string())
        .unwrap_or_default()
}

/// Which persona a generator prompt is for: 0, 1, 2 by the tagger's order.
fn persona_index(persona: &str) -> usize {
    match persona {
        "general readers" | "aged 10-12" => 1,
        "researchers" | "teachers" => 2,
        _ => 0,
    }
}

fn filter(req: &ChatRequest) -> Result<String, LlmError> {
    let doc = req.section("document").unwrap_or("");
    let q = if doc.contains("Home | About") {
        "N"
    } else {
        "Y"
    };
    Ok(json(&[("thought", "scripted"), ("qualified", q)]))
}

fn tagger(req: &ChatRequest) -> Result<String, LlmError> {
    let doc = req.section("document").unwrap_or("");
    let lower = doc.to_lowercase();
    if lower.contains("horoscope") {
        return Ok(json(&[
            ("thought", "scripted"),
            ("domain", "Astrology"),
            ("persona", "believers"),
        ]));
    }
    let domain = KEYWORDS
        .iter()
        .find(|(k, _)| lower.contains(k))
        .map(|(_, d)| *d)
        .unwrap_or("Other");
    let personas = if lower.contains("classroom") {
        "students, aged 10-12, teachers"
    } else if doc.contains("Notably") {
        "students, general readers, researchers"
    } else {
        "students, general readers"
    };
    Ok(json(&[
        ("thought", "scripted"),
        ("domain", domain),
        ("persona", personas),
    ]))
}

fn generator(req: &ChatRequest) -> Result<String, LlmError> {
    let doc = req.section("document").unwrap_or("");
    let persona = persona_of(req);
    let k = persona_index(&persona);
    if doc.contains("Tessel") && k == 0 {
        return Ok("I am not able to write a question for this text.".into());
    }
    let Some((entity, year)) = founding(doc) else {
        return Ok("{}".into());
    };
    let mut question = format!(
        "For {persona}: {entity} is a subject of this history. In what year was {entity} founded?"
    );
    if doc.contains("lighthouse keeper") {
        question = doc
            .split(". ")
            .next()
            .unwrap_or("")
            .trim_end_matches('.')
            .to_string()
            + "?";
    }
    if doc.contains("Kestrel") && k == 1 {
        question = format!("Was {entity}, founded in {year}, a famous place?");
    }
    let reply = json(&[
        ("thought", "scripted"),
        ("question", &question),
        ("answer", &year),
    ]);
    if doc.contains("Marlow") {
        let body = reply.trim_end_matches('}');
        return Ok(format!("```json\n{body},\n}}\n```"));
    }
    Ok(reply)
}

fn checker(req: &ChatRequest) -> Result<String, LlmError> {
    let doc = req.section("document").unwrap_or("");
    let question = req.section("question").unwrap_or("");
    let correct = if doc.contains("Orchid") && question.starts_with("For students:") {
        "N"
    } else {
        "Y"
    };
    Ok(json(&[
        ("thought", "scripted"),
        ("has_context", "Y"),
        ("answer_correctness", correct),
        ("info_leakage", "N"),
    ]))
}

/// The fixture script's model for `stage` (`filter`, `tagger`, `generator` or `checker`),
/// named `scripted-<stage>`.
pub fn fixture_model(stage: &str) -> ScriptedModel {
    let id = format!("scripted-{stage}");
    match stage {
        "filter" => ScriptedModel::new(id, filter),
        "tagger" => ScriptedModel::new(id, tagger),
        "generator" => ScriptedModel::new(id, generator),
        _ => ScriptedModel::new(id, checker),
    }
}
