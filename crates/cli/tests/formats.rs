//! Datasets in the formats TRL and verl users have (verl's Parquet layout, TRL's Hugging Face
//! layouts, conversational JSONL) reach `rlft train` and `rlft eval` through the model's chat
//! template, and evaluations write every sample and a report of the first failures.

mod common;

use std::path::{Path, PathBuf};

use common::{QWEN2, jsonl, rlft_err, rlft_ok, tmp};
use rlft_models::{ChatMessage, ChatTemplateOptions, ChatTokenizer};
use rlft_tasks::{Dataset, DatasetConfig, MathVerifier, TaskItem, Verifier};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tasks/tests/fixtures/datasets")
        .join(name)
}

/// The chat-template rendering of a conversational item, as `rlft` must feed it to the model.
fn rendered(tok: &ChatTokenizer, item: &TaskItem) -> String {
    let messages: Vec<ChatMessage> = item
        .messages
        .as_ref()
        .expect("a conversational item")
        .iter()
        .map(|m| ChatMessage::new(m.role.as_str(), m.content.as_str()))
        .collect();
    let text = tok
        .apply_chat_template(
            &messages,
            &ChatTemplateOptions {
                add_generation_prompt: true,
                ..Default::default()
            },
        )
        .unwrap();
    // What the samples file holds: the prompt's token ids decoded, special tokens kept.
    tok.decode(&tok.encode(&text, false).unwrap(), false)
        .unwrap()
}

fn train_config(dir: &Path, data: &Path, extra_data: &str) -> PathBuf {
    let cfg = format!(
        r#"
out = "run"
prompts_per_step = 2

[model]
path = "{QWEN2}"

[data]
path = "{}"
format = "chat"
test_fraction = 0.5
{extra_data}

[verifier]
kind = "math"

[sampler]
kind = "uniform"

[train]
steps = 2

[train.sampling]
n = 2
max_new_tokens = 4
temperature = 1.0

[train.grpo]
temperature = 1.0

[eval]
n = 1
k = [1]
"#,
        data.display()
    );
    let path = dir.join("run.toml");
    std::fs::write(&path, cfg).unwrap();
    path
}

#[test]
fn train_reads_verl_parquet_and_conversational_jsonl_through_the_chat_template() {
    let tok = ChatTokenizer::from_dir(QWEN2).unwrap();
    for name in ["verl_gsm8k.parquet", "conversational.jsonl"] {
        let dir = tmp(&format!("formats-{name}"));
        let data = fixture(name);
        let cfg = train_config(&dir, &data, "");
        let printed = rlft_ok(&["train", "--config", cfg.to_str().unwrap()]);
        assert!(printed.trim().ends_with("summary.json"), "{printed}");
        let run = dir.join("run");
        assert_eq!(jsonl(&run.join("metrics.jsonl")).len(), 2, "{name}");

        // The held-out prompts are the dataset's conversations rendered by the template.
        let items = Dataset::from_path(&data, &DatasetConfig::default()).unwrap();
        for file in ["eval_before_samples.jsonl", "eval_after_samples.jsonl"] {
            let rows = jsonl(&run.join(file));
            assert!(!rows.is_empty(), "{name}: {file} is empty");
            for r in &rows {
                let item = items.get(r["id"].as_str().unwrap()).unwrap();
                assert_eq!(r["prompt"], rendered(&tok, item), "{name}: {file}");
                assert_eq!(r["answer"], item.answer.as_str());
            }
        }
        let report = std::fs::read_to_string(run.join("report.md")).unwrap();
        assert!(
            report.contains("[eval_after_samples.jsonl](eval_after_samples.jsonl)")
                && report.contains("[eval_before_samples.jsonl](eval_before_samples.jsonl)")
                && report.contains("### First failures after training"),
            "{name}: {report}"
        );
    }
}

#[test]
fn bad_rows_and_formats_are_errors_that_say_where() {
    let dir = tmp("formats-bad");
    let cfg = train_config(&dir, &fixture("bad_rows.parquet"), "");
    let err = rlft_err(&["train", "--dry-run", "--config", cfg.to_str().unwrap()]);
    assert!(
        err.contains(
            "bad_rows.parquet: row group 1, row 3: column reward_model.ground_truth: must be a string or a number, found null"
        ),
        "{err}"
    );
    // A conversation cannot be fed raw, and two system prompts are ambiguous.
    for (edit, needle) in [
        ("format = \"chat\"", "data.format"),
        ("system_prompt = \"Be brief.\"", "data.system_prompt"),
    ] {
        let cfg = train_config(&dir, &fixture("conversational.jsonl"), "");
        let text = std::fs::read_to_string(&cfg).unwrap();
        let text = if edit.starts_with("format") {
            text.replace(edit, "format = \"raw\"")
        } else {
            text.replace(
                "test_fraction = 0.5",
                &format!("test_fraction = 0.5\n{edit}"),
            )
        };
        std::fs::write(&cfg, text).unwrap();
        let err = rlft_err(&["train", "--dry-run", "--config", cfg.to_str().unwrap()]);
        assert!(err.contains(needle) && err.contains("conv-"), "{err}");
    }
}

#[test]
fn eval_writes_every_sample_and_a_report_of_the_first_failures() {
    let dir = tmp("formats-eval");
    let data = fixture("trl_conversational.parquet");
    let samples = dir.join("samples.jsonl");
    let printed = rlft_ok(&[
        "eval",
        "--model",
        QWEN2,
        "--data",
        data.to_str().unwrap(),
        "--verifier",
        "math",
        "--n",
        "2",
        "--temperature",
        "1.0",
        "--max-new-tokens",
        "6",
        "--samples",
        samples.to_str().unwrap(),
    ]);
    let report: serde_json::Value = serde_json::from_str(&printed).unwrap();
    let rows = jsonl(&samples);
    let items = Dataset::from_path(&data, &DatasetConfig::default()).unwrap();
    assert_eq!(rows.len(), 2 * items.len());
    let tok = ChatTokenizer::from_dir(QWEN2).unwrap();
    let verifier = MathVerifier::default();
    let mut correct = 0;
    for item in items.items() {
        let mine: Vec<&serde_json::Value> = rows.iter().filter(|r| r["id"] == *item.id).collect();
        assert_eq!(
            mine.iter()
                .map(|r| r["sample"].as_u64().unwrap())
                .collect::<Vec<_>>(),
            [0, 1]
        );
        for r in mine {
            assert_eq!(r["prompt"], rendered(&tok, item));
            // Each line is what the verifier says of its completion.
            let v = verifier
                .verify(item, r["completion"].as_str().unwrap())
                .unwrap();
            assert_eq!(r["verdict"], if v.correct { "correct" } else { "wrong" });
            assert_eq!(r["extracted"], serde_json::json!(v.answer));
            assert_eq!(r["reason"], v.reason.to_string());
            assert_eq!(r["detail"], serde_json::to_value(&v.reason).unwrap());
            assert_eq!(r["score"], v.score);
            assert_eq!(r["answer"], item.answer.as_str());
            correct += usize::from(v.correct);
        }
    }
    // The samples are the ones the printed pass@1 counted.
    let pass1 = report["pass1"].as_f64().unwrap();
    assert!((pass1 - correct as f64 / rows.len() as f64).abs() < 1e-12);

    let md = std::fs::read_to_string(dir.join("samples.md")).unwrap();
    let wrong = rows.len() - correct;
    assert!(
        md.contains(&format!("{wrong} of {} samples wrong.", rows.len())),
        "{md}"
    );
    assert!(md.contains("[samples.jsonl](samples.jsonl)"), "{md}");
    if wrong > 0 {
        let first = rows.iter().find(|r| r["verdict"] == "wrong").unwrap();
        assert!(
            md.contains(&format!(
                "| {} | {} |",
                first["id"].as_str().unwrap(),
                first["sample"]
            )),
            "the first failure is listed: {md}"
        );
    }

    // --report puts the Markdown elsewhere.
    let other = dir.join("elsewhere.md");
    rlft_ok(&[
        "eval",
        "--model",
        QWEN2,
        "--data",
        data.to_str().unwrap(),
        "--max-new-tokens",
        "2",
        "--samples",
        samples.to_str().unwrap(),
        "--report",
        other.to_str().unwrap(),
    ]);
    assert!(
        std::fs::read_to_string(&other)
            .unwrap()
            .contains("## First failures")
    );
}
