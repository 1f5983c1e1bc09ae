//! [`LlmJudge`]: the paper's reward, an LLM deciding whether a completion's final answer
//! matches the gold answer, as an rlft-tasks [`Verifier`].

use std::sync::Arc;

use rlft_tasks::{AnswerSource, Reason, TaskError, TaskItem, Verdict, Verifier, extract_answer};

use crate::chat::{ChatModel, ChatRequest};
use crate::parse::{clip, parse_object, string_fields, yes_no};
use crate::prompts::render;

/// The judge prompt (\[D\]: the paper's judge prompt is not published, spec §3).
pub const JUDGE_PROMPT: &str = "\
You grade answers. Decide whether the response's final answer means the same as the \
reference answer for the question. Ignore wording, formatting, units written out or \
abbreviated, and extra explanation; a different value, name or date is wrong.

<question>
{{question}}
</question>

<reference>
{{reference}}
</reference>

<response>
{{response}}
</response>

Reply with a JSON object only, no other text:
{\"thought\": \"<your reasoning>\", \"correct\": \"Y\" or \"N\"}";

/// Scores 1 when a chat model judges the completion's answer equal to the gold answer.
///
/// The answer is taken from the last `<answer>` tag, else a `\boxed{}`, else the whole
/// completion (clipped to 4000 bytes). The judge samples at temperature 0. A reply that does
/// not parse scores 0 with the reason; a model that cannot be reached (after its own
/// retries) is an error, so training stops rather than learning from missing rewards.
pub struct LlmJudge {
    model: Arc<dyn ChatModel>,
    max_tokens: usize,
}

impl LlmJudge {
    /// A judge over `model` allowing `max_tokens` per verdict.
    pub fn new(model: Arc<dyn ChatModel>, max_tokens: usize) -> Self {
        Self { model, max_tokens }
    }
}

impl Verifier for LlmJudge {
    fn verify(&self, item: &TaskItem, completion: &str) -> Result<Verdict, TaskError> {
        let sources = [
            AnswerSource::AnswerTag,
            AnswerSource::Boxed,
            AnswerSource::Whole,
        ];
        let Some((_, answer)) = extract_answer(completion, &sources) else {
            return Ok(Verdict::wrong(
                None,
                Reason::NoAnswer {
                    looked_for: "<answer>…</answer>, \\boxed{…}, the whole text".into(),
                },
            ));
        };
        let answer = clip(answer, 4000);
        let prompt = render(
            JUDGE_PROMPT,
            &[
                ("question", &item.prompt),
                ("reference", &item.answer),
                ("response", &answer),
            ],
        );
        let req = ChatRequest::user(prompt, 0.0, self.max_tokens);
        let reply = self.model.chat(&req).map_err(|e| TaskError::Config {
            field: "verifier.llm_judge".into(),
            reason: format!("the judge model {} failed: {e}", self.model.model_id()),
        })?;
        let verdict = parse_object(&reply)
            .and_then(|m| string_fields(&m, &["correct"]))
            .and_then(|v| yes_no(&v[0], "correct"));
        Ok(match verdict {
            Ok(true) => Verdict::correct(answer),
            Ok(false) => Verdict::wrong(
                Some(answer.clone()),
                Reason::Mismatch {
                    expected: clip(&item.answer, 200),
                    found: clip(&answer, 200),
                },
            ),
            Err(e) => Verdict::wrong(
                Some(answer),
                Reason::Other {
                    message: format!(
                        "the judge's reply does not parse ({e}): {}",
                        clip(&reply, 200)
                    ),
                },
            ),
        })
    }

    fn name(&self) -> &str {
        "llm_judge"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ScriptedModel;

    #[test]
    fn judge_reads_the_verdict() {
        let model = Arc::new(ScriptedModel::new("judge", |r: &ChatRequest| {
            let same = r
                .section("response")
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case("forty meters");
            Ok(format!(
                "{{\"correct\": \"{}\"}}",
                if same { "Y" } else { "N" }
            ))
        }));
        let j = LlmJudge::new(model, 64);
        let item = TaskItem::new("1", "How tall?", "Forty meters.");
        assert!(
            j.verify(&item, "<answer>forty meters</answer>")
                .unwrap()
                .correct
        );
        assert!(
            !j.verify(&item, "<answer>fifty meters</answer>")
                .unwrap()
                .correct
        );
        let broken = LlmJudge::new(
            Arc::new(ScriptedModel::new("j", |_: &ChatRequest| Ok("no".into()))),
            8,
        );
        let v = broken.verify(&item, "x").unwrap();
        assert!(!v.correct && matches!(v.reason, Reason::Other { .. }));
        let down = LlmJudge::new(
            Arc::new(ScriptedModel::new("j", |_: &ChatRequest| {
                Err(crate::LlmError::retryable("503"))
            })),
            8,
        );
        assert!(down.verify(&item, "x").is_err());
    }
}
