//! The four prompt templates (paraphrases of the reference prompts, spec §1 S2, S3, S5, S6)
//! and their rendering. Placeholders are `{{name}}`, substituted in one pass, so a document
//! that contains `{{persona}}` is sent as written.

/// S2 document filter.
pub const FILTER_PROMPT: &str = "\
You are a data analyst preparing training data. The end goal is to extract from the text \
below one question together with a short answer that can be checked without ambiguity.

Judge whether the text
(a) is informative and self-contained,
(b) has enough depth and clarity, and
(c) allows extracting a question with its answer.
Reject only text that is mostly boilerplate (navigation menus, headers, footers, cookie \
notices) or a fragment lacking the context needed to verify an answer. Do not judge \
difficulty, topic or format: the diversity of the web is wanted.

<document>
{{document}}
</document>

Reply with a JSON object only, no other text:
{\"thought\": \"<your reasoning>\", \"qualified\": \"Y\" or \"N\"}";

/// S3 domain + persona tagging.
pub const TAGGER_PROMPT: &str = "\
Classify the text below into the single most relevant domain of this list: {{domains}}. \
Answer \"Other\" when the text is unclear or fits none of them.
Then name the intended audiences (personas) of the text: the readers who would want to \
learn from it. List several, at most 3, separated by commas, when the text suits several.

<document>
{{document}}
</document>

Reply with a JSON object only, no other text:
{\"thought\": \"<your reasoning>\", \"domain\": \"<one domain of the list>\", \"persona\": \"<persona 1>, <persona 2>\"}";

/// S5 QA generation.
pub const GENERATOR_PROMPT: &str = "\
You are {{persona}}. From the material below, write one question you would naturally ask \
and its answer.
Requirements:
- The question and the answer come entirely from the material: no outside facts.
- The answer is short and can be checked unambiguously (a number, a name, a date, a short \
phrase).
- The question will be shown without the material: give it the brief background it needs, \
and never refer to \"the material\", \"the text\" or \"the passage\".
- The question must not state or give away the answer.

{{fewshot}}

<document>
{{document}}
</document>

Reply with a JSON object only, no other text:
{\"thought\": \"<your reasoning>\", \"question\": \"<the question>\", \"answer\": \"<the answer>\"}";

/// S6b quality check.
pub const CHECKER_PROMPT: &str = "\
You check question-answer pairs made from a source document. Judge them against the \
document only, not your own knowledge.
- has_context: does the question carry the background it needs, without leaning on \
\"the material\" or \"the text\"? (Y/N)
- answer_correctness: is the answer supported by the document? (Y/N)
- info_leakage: does the question explicitly give away the answer? (Y/N)

<document>
{{document}}
</document>

<question>
{{question}}
</question>

<answer>
{{answer}}
</answer>

Reply with a JSON object only, no other text:
{\"thought\": \"<your reasoning>\", \"has_context\": \"Y\" or \"N\", \"answer_correctness\": \"Y\" or \"N\", \"info_leakage\": \"Y\" or \"N\"}";

/// Renders `template`, replacing each `{{name}}` by its value in one pass (an unknown name
/// is left as written).
pub fn render(template: &str, vars: &[(&str, &str)]) -> String {
    let mut out =
        String::with_capacity(template.len() + vars.iter().map(|v| v.1.len()).sum::<usize>());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find("}}") {
            Some(end) => {
                let name = &after[..end];
                match vars.iter().find(|(k, _)| *k == name) {
                    Some((_, v)) => out.push_str(v),
                    None => {
                        out.push_str("{{");
                        out.push_str(name);
                        out.push_str("}}");
                    }
                }
                rest = &after[end + 2..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// The first 16 hex digits of the template's sha256: the record's `prompt_hashes`.
pub fn prompt_hash(template: &str) -> String {
    crate::ingest::sha256_hex(template.as_bytes())[..16].to_string()
}
