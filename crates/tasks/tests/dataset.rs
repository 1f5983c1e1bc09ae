//! Loading JSONL datasets: field names, ids, errors with line numbers, splits.

mod common;

use common::TempDir;
use rlft_tasks::{
    Dataset, DatasetConfig, SplitConfig, TaskError, TaskItem, Verifier, prompt_hash_id,
};

fn load(text: &str, cfg: &DatasetConfig) -> Result<Dataset, TaskError> {
    Dataset::from_reader(text.as_bytes(), "mem.jsonl", cfg)
}

#[test]
fn reads_default_and_alternative_field_names() {
    let text = r#"{"id": "a", "prompt": "p1", "answer": "1"}
{"question": "q2", "answer": 2, "id": 7, "source": "gsm8k"}

{"problem": "p3", "solution": "\\boxed{3}"}
"#;
    let d = load(text, &DatasetConfig::default()).unwrap();
    assert_eq!(d.len(), 3);
    let items = d.items();
    assert_eq!(items[0], TaskItem::new("a", "p1", "1"));
    assert_eq!(items[1].id, "7");
    assert_eq!(items[1].prompt, "q2");
    assert_eq!(items[1].answer, "2");
    assert_eq!(items[1].meta["source"], "gsm8k");
    assert_eq!(items[2].answer, "\\boxed{3}");
    // No id field: the id is the documented hash of the prompt.
    assert_eq!(items[2].id, prompt_hash_id("p3"));
    assert!(items[2].id.starts_with('h') && items[2].id.len() == 17);
}

#[test]
fn custom_field_names_and_first_match_wins() {
    let cfg = DatasetConfig {
        prompt_fields: vec!["input".into()],
        answer_fields: vec!["gold".into(), "answer".into()],
        id_fields: vec!["uid".into()],
        prompt_template: None,
    };
    let d = load(
        r#"{"input": "x", "gold": "g", "answer": "ignored", "uid": "u1"}"#,
        &cfg,
    )
    .unwrap();
    let it = &d.items()[0];
    assert_eq!(
        (it.id.as_str(), it.prompt.as_str(), it.answer.as_str()),
        ("u1", "x", "g")
    );
    assert_eq!(
        it.meta["answer"], "ignored",
        "unused alternatives stay in meta"
    );
}

#[test]
fn prompt_template_builds_prompts_for_rows_without_one() {
    // Countdown-Tasks-3to4 rows carry only `nums` and `target`.
    let cfg = DatasetConfig {
        prompt_template: Some("Using the numbers {nums}, make {target}. {note".into()),
        ..Default::default()
    };
    let d = load(r#"{"target": 98, "nums": [44, 19, 35]}"#, &cfg).unwrap();
    let it = &d.items()[0];
    assert_eq!(it.prompt, "Using the numbers [44,19,35], make 98. {note");
    assert_eq!(it.answer, "98");
    assert_eq!(it.meta["nums"], serde_json::json!([44, 19, 35]));
    assert_eq!(it.id, prompt_hash_id(&it.prompt));
    let verdict = rlft_tasks::CountdownVerifier::default()
        .verify(it, "<answer>44 + 19 + 35</answer>")
        .unwrap();
    assert!(verdict.correct);
    let err = load(r#"{"target": 98}"#, &cfg).unwrap_err();
    assert!(matches!(err, TaskError::MissingField { line: 1, field, .. } if field == "nums"));
}

#[test]
fn meta_fields_named_like_core_fields_do_not_duplicate_keys() {
    let cfg = DatasetConfig {
        prompt_fields: vec!["q".into()],
        answer_fields: vec!["gold".into()],
        ..Default::default()
    };
    let d = load(
        r#"{"q": "x", "gold": "1", "answer": "stale", "prompt": "old"}"#,
        &cfg,
    )
    .unwrap();
    let line = serde_json::to_string(&d.items()[0]).unwrap();
    assert_eq!(line.matches("\"answer\"").count(), 1, "{line}");
    assert_eq!(line.matches("\"prompt\"").count(), 1, "{line}");
    let back: rlft_tasks::TaskItem = serde_json::from_str(&line).unwrap();
    assert_eq!((back.prompt.as_str(), back.answer.as_str()), ("x", "1"));
}

#[test]
fn hash_ids_are_stable_and_order_independent() {
    let a = load(
        "{\"prompt\": \"one\", \"answer\": \"1\"}\n{\"prompt\": \"two\", \"answer\": \"2\"}",
        &Default::default(),
    )
    .unwrap();
    let b = load(
        "{\"prompt\": \"two\", \"answer\": \"2\"}\n{\"prompt\": \"one\", \"answer\": \"1\"}",
        &Default::default(),
    )
    .unwrap();
    assert_eq!(a.get(&prompt_hash_id("one")).unwrap().answer, "1");
    assert_eq!(b.get(&prompt_hash_id("one")).unwrap().answer, "1");
    assert_ne!(prompt_hash_id("one"), prompt_hash_id("two"));
    // Exact values are pinned against an independent implementation in tests/reference.rs.
}

#[test]
fn errors_carry_path_line_and_field() {
    let cfg = DatasetConfig::default();
    type Check = Box<dyn Fn(&TaskError) -> bool>;
    let cases: Vec<(&str, Check)> = vec![
        (
            "{\"prompt\": \"a\", \"answer\": \"1\"}\n{not json}\n",
            Box::new(|e| matches!(e, TaskError::Json { line: 2, .. })),
        ),
        (
            "\n\n[1, 2]\n",
            Box::new(|e| {
                matches!(
                    e,
                    TaskError::NotAnObject {
                        line: 3,
                        found: "an array",
                        ..
                    }
                )
            }),
        ),
        (
            "{\"prompt\": \"a\"}\n",
            Box::new(
                |e| matches!(e, TaskError::MissingField { line: 1, field, .. } if field == "answer or solution or target or reward_model.ground_truth"),
            ),
        ),
        (
            "{\"prompt\": 5, \"answer\": \"1\"}\n",
            Box::new(
                |e| matches!(e, TaskError::FieldType { line: 1, field, expected: "a string or a list of {role, content} messages", found: "a number", .. } if field == "prompt"),
            ),
        ),
        (
            "{\"prompt\": \"a\", \"answer\": [1]}\n",
            Box::new(
                |e| matches!(e, TaskError::FieldType { field, found: "an array", .. } if field == "answer"),
            ),
        ),
        (
            "{\"prompt\": \"a\", \"answer\": \"1\", \"id\": null}\n",
            Box::new(
                |e| matches!(e, TaskError::FieldType { field, found: "null", .. } if field == "id"),
            ),
        ),
        (
            "{\"id\": \"x\", \"prompt\": \"a\", \"answer\": \"1\"}\n{\"id\": \"y\", \"prompt\": \"b\", \"answer\": \"1\"}\n{\"id\": \"x\", \"prompt\": \"c\", \"answer\": \"1\"}\n",
            Box::new(
                |e| matches!(e, TaskError::DuplicateId { line: 3, first_line: 1, id, .. } if id == "x"),
            ),
        ),
    ];
    for (text, check) in cases {
        let err = load(text, &cfg).unwrap_err();
        assert!(check(&err), "{text:?} gave {err:?}");
        let msg = err.to_string();
        assert!(msg.starts_with("mem.jsonl:"), "{msg}");
        assert!(msg.chars().next().is_some_and(|c| !c.is_uppercase()));
    }
}

#[test]
fn missing_file_is_an_io_error_naming_the_path() {
    let err =
        Dataset::from_jsonl("/nonexistent/dir/x.jsonl", &DatasetConfig::default()).unwrap_err();
    assert!(matches!(&err, TaskError::Io { path, .. } if path.ends_with("x.jsonl")));
    assert!(err.to_string().contains("/nonexistent/dir/x.jsonl"));
}

#[test]
fn write_then_read_round_trips_atomically() {
    let dir = TempDir::new("rt");
    let items = vec![
        TaskItem::new("a", "p\n\"quoted\" ünïcode", "1")
            .with_meta("nums", serde_json::json!([1, 2])),
        TaskItem::new("b", "q", "2"),
    ];
    let d = Dataset::from_items(items).unwrap();
    let path = dir.path().join("out.jsonl");
    d.write_jsonl(&path).unwrap();
    assert_eq!(
        Dataset::from_jsonl(&path, &DatasetConfig::default()).unwrap(),
        d
    );
    // Overwrite in place; no temporary file is left behind.
    d.write_jsonl(&path).unwrap();
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("out.jsonl")]);
    // Writing into a missing directory fails with the path.
    let bad = dir.path().join("missing/out.jsonl");
    assert!(matches!(d.write_jsonl(&bad), Err(TaskError::Io { .. })));
    assert!(
        Dataset::from_items(vec![
            TaskItem::new("a", "x", "1"),
            TaskItem::new("a", "y", "1")
        ])
        .is_err()
    );
}

fn numbered(n: usize) -> Vec<TaskItem> {
    (0..n)
        .map(|i| TaskItem::new(format!("id-{i}"), format!("p{i}"), "0"))
        .collect()
}

#[test]
fn split_is_deterministic_order_independent_and_near_fraction() {
    let cfg = SplitConfig {
        test_fraction: 0.2,
        seed: 7,
    };
    let items = numbered(5000);
    let d = Dataset::from_items(items.clone()).unwrap();
    let s = d.split(&cfg).unwrap();
    assert_eq!(s.train.len() + s.test.len(), 5000);
    // Binomial(5000, 0.2): sd ≈ 28; allow 5 sd.
    assert!((860..=1140).contains(&s.test.len()), "{}", s.test.len());
    let mut reversed = items.clone();
    reversed.reverse();
    let r = Dataset::from_items(reversed).unwrap().split(&cfg).unwrap();
    let ids = |d: &Dataset| {
        let mut v: Vec<String> = d.items().iter().map(|i| i.id.clone()).collect();
        v.sort();
        v
    };
    assert_eq!(ids(&s.test), ids(&r.test));
    // A subset of the file splits its items the same way.
    let sub = Dataset::from_items(items[..100].to_vec())
        .unwrap()
        .split(&cfg)
        .unwrap();
    for it in sub.test.items() {
        assert!(s.test.get(&it.id).is_some());
    }
    // Another seed gives another split; fractions 0 and 1 are all-train / all-test.
    let other = d
        .split(&SplitConfig {
            test_fraction: 0.2,
            seed: 8,
        })
        .unwrap();
    assert_ne!(ids(&other.test), ids(&s.test));
    assert!(
        d.split(&SplitConfig {
            test_fraction: 0.0,
            seed: 1
        })
        .unwrap()
        .test
        .is_empty()
    );
    assert!(
        d.split(&SplitConfig {
            test_fraction: 1.0,
            seed: 1
        })
        .unwrap()
        .train
        .is_empty()
    );
    assert!(matches!(
        d.split(&SplitConfig { test_fraction: 1.5, seed: 1 }),
        Err(TaskError::Config { field, .. }) if field == "split.test_fraction"
    ));
}

#[test]
fn configs_deserialize_partially_and_reject_typos() {
    let cfg: DatasetConfig = serde_json::from_str(r#"{"id_fields": ["uid"]}"#).unwrap();
    assert_eq!(cfg.prompt_fields, DatasetConfig::default().prompt_fields);
    assert_eq!(cfg.id_fields, vec!["uid".to_string()]);
    assert!(serde_json::from_str::<DatasetConfig>(r#"{"promt_fields": []}"#).is_err());
    let split: SplitConfig = serde_json::from_str(r#"{"seed": 3}"#).unwrap();
    assert_eq!(split.test_fraction, 0.05);
}
