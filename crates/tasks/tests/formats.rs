//! Datasets in the formats TRL and verl users have: verl's Parquet layout, the Hugging Face
//! layouts TRL documents (standard and conversational), and conversational JSONL. The
//! Parquet fixtures and pyarrow's own reading of them (`*.expected.json`) come from
//! `scripts/datasets/make_fixtures.py`.

mod common;

use std::path::{Path, PathBuf};

use common::TempDir;
use rlft_tasks::{
    Dataset, DatasetConfig, Message, Role, TaskError, TaskItem, Verifier, prompt_hash_id,
};
use serde_json::{Value, json};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/datasets")
        .join(name)
}

fn expected(name: &str) -> Value {
    let text = std::fs::read_to_string(fixture(&format!("{name}.expected.json"))).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Puts an item's prompt and answer back where the file had them, giving the source row.
fn rebuild(item: &TaskItem, prompt_field: &str, answer_path: &[&str]) -> Value {
    let mut row = Value::Object(item.meta.clone());
    let prompt = match &item.messages {
        Some(m) => serde_json::to_value(m).unwrap(),
        None => Value::String(item.prompt.clone()),
    };
    row[prompt_field] = prompt;
    let (leaf, parents) = answer_path.split_last().unwrap();
    let mut at = &mut row;
    for p in parents {
        at = &mut at[*p];
    }
    at[*leaf] = Value::String(item.answer.clone());
    row
}

#[test]
fn verl_parquet_reads_as_pyarrow_reads_it_across_row_groups() {
    let exp = expected("verl_gsm8k");
    assert_eq!(
        exp["row_groups"],
        json!([2, 2, 2]),
        "fixture has 3 row groups"
    );
    let d = Dataset::from_path(fixture("verl_gsm8k.parquet"), &DatasetConfig::default()).unwrap();
    let rows = exp["rows"].as_array().unwrap();
    assert_eq!(d.len(), rows.len());
    for (item, row) in d.items().iter().zip(rows) {
        assert_eq!(
            &rebuild(item, "prompt", &["reward_model", "ground_truth"]),
            row
        );
        // The model sees the conversation; `prompt` is its user message.
        let messages = item.messages.as_ref().unwrap();
        assert_eq!(messages.len(), 1);
        assert_eq!(messages[0].role, Role::User);
        assert_eq!(item.prompt, row["prompt"][0]["content"].as_str().unwrap());
        assert_eq!(
            item.answer,
            row["reward_model"]["ground_truth"].as_str().unwrap()
        );
        // verl's other columns stay available to verifiers and reward functions.
        assert_eq!(item.meta["data_source"], "openai/gsm8k");
        assert_eq!(item.meta["extra_info"], row["extra_info"]);
        assert_eq!(
            item.id,
            prompt_hash_id(&serde_json::to_string(messages).unwrap())
        );
    }
    // The gold answer reaches a verifier: GSM8K's "#### 7" style is graded by the math one.
    let first = &d.items()[0];
    let v = rlft_tasks::MathVerifier::default()
        .verify(first, "3 + 4 = 7, so \\boxed{7}")
        .unwrap();
    assert!(v.correct, "{v:?}");
}

#[test]
fn trl_standard_and_conversational_parquet_read_as_pyarrow_reads_them() {
    for name in ["trl_standard", "trl_conversational"] {
        let exp = expected(name);
        let d =
            Dataset::from_path(fixture(&format!("{name}.parquet")), &Default::default()).unwrap();
        let rows = exp["rows"].as_array().unwrap();
        assert_eq!(d.len(), rows.len(), "{name}");
        for (item, row) in d.items().iter().zip(rows) {
            assert_eq!(&rebuild(item, "prompt", &["solution"]), row, "{name}");
            assert_eq!(
                item.messages.is_some(),
                name == "trl_conversational",
                "{name}"
            );
        }
    }
    // The same question has the same text in both layouts.
    let s = Dataset::from_path(fixture("trl_standard.parquet"), &Default::default()).unwrap();
    let c = Dataset::from_path(fixture("trl_conversational.parquet"), &Default::default()).unwrap();
    for (a, b) in s.items().iter().zip(c.items()) {
        assert_eq!(a.prompt, b.prompt);
        assert_eq!(a.answer, b.answer);
    }
}

#[test]
fn field_mapping_reads_nested_columns_by_dotted_name() {
    let cfg = DatasetConfig {
        answer_fields: vec!["extra_info.answer".into()],
        id_fields: vec!["extra_info.index".into()],
        ..Default::default()
    };
    let d = Dataset::from_path(fixture("verl_gsm8k.parquet"), &cfg).unwrap();
    let ids: Vec<&str> = d.items().iter().map(|i| i.id.as_str()).collect();
    assert_eq!(ids, ["0", "1", "2", "3", "4", "5"]);
    assert_eq!(d.items()[0].answer, "3 + 4 = <<3+4=7>>7\n#### 7");
    // The fields read leave meta; their siblings stay.
    let extra = d.items()[0].meta["extra_info"].as_object().unwrap();
    assert!(!extra.contains_key("answer") && !extra.contains_key("index"));
    assert_eq!(extra["split"], "train");
    assert_eq!(d.items()[0].meta["reward_model"]["ground_truth"], "7");
}

#[test]
fn parquet_errors_name_the_file_row_group_row_and_column() {
    let path = fixture("bad_rows.parquet");
    let err = Dataset::from_path(&path, &DatasetConfig::default()).unwrap_err();
    match &err {
        TaskError::ParquetRow {
            path: p,
            row_group,
            row,
            column,
            reason,
        } => {
            assert_eq!(p, &path);
            assert_eq!((*row_group, *row), (1, 3));
            assert_eq!(column, "reward_model.ground_truth");
            assert!(reason.contains("found null"), "{reason}");
        }
        other => panic!("expected a ParquetRow error, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(
        msg.ends_with(
            "bad_rows.parquet: row group 1, row 3: column reward_model.ground_truth: must be a string or a number, found null"
        ),
        "{msg}"
    );

    // A column that is not there names the accepted names.
    let cfg = DatasetConfig {
        answer_fields: vec!["gold".into(), "label".into()],
        ..Default::default()
    };
    let err = Dataset::from_path(fixture("verl_gsm8k.parquet"), &cfg).unwrap_err();
    assert!(
        matches!(&err, TaskError::ParquetRow { row_group: 0, row: 0, column, .. } if column == "gold or label"),
        "{err:?}"
    );

    // Repeated ids are caught across row groups.
    let cfg = DatasetConfig {
        id_fields: vec!["extra_info.split".into()],
        ..Default::default()
    };
    let err = Dataset::from_path(fixture("verl_gsm8k.parquet"), &cfg).unwrap_err();
    assert!(
        matches!(&err, TaskError::ParquetRow { row_group: 0, row: 1, reason, .. } if reason.contains("first seen in row 0")),
        "{err:?}"
    );

    // Not Parquet at all.
    let dir = TempDir::new("notparquet");
    let fake = dir.write("fake.parquet", "{\"prompt\": \"a\", \"answer\": \"1\"}\n");
    let err = Dataset::from_path(&fake, &DatasetConfig::default()).unwrap_err();
    assert!(matches!(&err, TaskError::Parquet { .. }), "{err:?}");
    assert!(err.to_string().contains("fake.parquet"), "{err}");
}

#[test]
fn conversational_jsonl_reads_messages_with_their_system_prompt() {
    let d = Dataset::from_path(fixture("conversational.jsonl"), &Default::default()).unwrap();
    assert_eq!(d.len(), 6);
    let it = &d.items()[1];
    assert_eq!(it.id, "conv-1");
    assert_eq!(it.answer, "12");
    assert_eq!(
        it.messages.as_deref().unwrap(),
        [
            Message::new(Role::System, "You are a careful calculator."),
            Message::new(
                Role::User,
                "A box holds 6 pens. How many pens are in 2 boxes?"
            ),
        ]
    );
    assert_eq!(
        it.prompt,
        "A box holds 6 pens. How many pens are in 2 boxes?"
    );
    assert!(!it.meta.contains_key("messages"));
}

fn load(text: &str) -> Result<Dataset, TaskError> {
    Dataset::from_reader(text.as_bytes(), "mem.jsonl", &DatasetConfig::default())
}

#[test]
fn malformed_conversations_are_errors_naming_line_field_and_message() {
    let cases = [
        (
            r#"{"prompt": [{"role": "tool", "content": "x"}], "answer": "1"}"#,
            "prompt",
            "message 0: role must be system, user or assistant, found \"tool\"",
        ),
        (
            r#"{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}], "answer": "1"}"#,
            "messages",
            "message 1: a prompt must not end with an assistant message",
        ),
        (
            r#"{"prompt": [], "answer": "1"}"#,
            "prompt",
            "the conversation has no messages",
        ),
        (
            r#"{"prompt": [{"role": "system", "content": "s"}], "answer": "1"}"#,
            "prompt",
            "no user message",
        ),
        (
            r#"{"prompt": [{"role": "user", "content": [{"type": "text", "text": "q"}]}], "answer": "1"}"#,
            "prompt",
            "message 0: content must be a string",
        ),
        (
            r#"{"prompt": [{"role": "user", "content": "q", "name": "bob"}], "answer": "1"}"#,
            "prompt",
            "key \"name\" is not supported",
        ),
        (
            r#"{"prompt": ["q"], "answer": "1"}"#,
            "prompt",
            "message 0 must be a {role, content} object",
        ),
    ];
    for (line, field, needle) in cases {
        let text = format!("{{\"prompt\": \"ok\", \"answer\": \"1\"}}\n{line}\n");
        let err = load(&text).unwrap_err();
        assert!(
            matches!(&err, TaskError::BadField { line: 2, field: f, reason, .. } if f == field && reason.contains(needle)),
            "{line}: {err:?}"
        );
        assert!(err.to_string().starts_with("mem.jsonl:2: field "), "{err}");
    }
    // Null-valued extra keys (columnar exports fill absent keys with null) are fine.
    let d = load(
        r#"{"prompt": [{"role": "user", "content": "q", "tool_calls": null}], "answer": "1"}"#,
    )
    .unwrap();
    assert_eq!(d.items()[0].prompt, "q");
}

#[test]
fn conversational_items_round_trip_through_jsonl_and_serde() {
    let dir = TempDir::new("conv-rt");
    let item = TaskItem::chat(
        "c",
        vec![
            Message::new(Role::System, "sys"),
            Message::new(Role::User, "first"),
            Message::new(Role::Assistant, "reply"),
            Message::new(Role::User, "second"),
        ],
        "42",
    )
    .unwrap()
    .with_meta("data_source", "x");
    assert_eq!(item.prompt, "second");
    let d = Dataset::from_items(vec![item.clone(), TaskItem::new("t", "text", "1")]).unwrap();
    let path = dir.path().join("out.jsonl");
    d.write_jsonl(&path).unwrap();
    assert_eq!(
        Dataset::from_path(&path, &DatasetConfig::default()).unwrap(),
        d
    );
    let line = serde_json::to_string(&item).unwrap();
    assert!(
        line.starts_with(r#"{"id":"c","prompt":[{"role":"system""#),
        "{line}"
    );
    let back: TaskItem = serde_json::from_str(&line).unwrap();
    assert_eq!(back, item);
    assert!(
        TaskItem::chat("e", vec![Message::new(Role::Assistant, "a")], "1").is_err(),
        "a conversation ending with the assistant is not a prompt"
    );
}
