//! Synthetic generators: determinism, graded difficulty, reachability, JSONL round trip.

mod common;

use common::{TempDir, countdown_solvable};
use rlft_tasks::{
    ArithOp, ArithmeticConfig, CountdownConfig, CountdownVerifier, Dataset, DatasetConfig,
    Difficulty, TaskError, Verifier,
};

fn nums(item: &rlft_tasks::TaskItem) -> Vec<u64> {
    item.meta["nums"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect()
}

#[test]
fn every_countdown_target_is_reachable_by_brute_force() {
    for difficulty in [Difficulty::Easy, Difficulty::Medium, Difficulty::Hard] {
        let cfg = CountdownConfig {
            count: 150,
            seed: 9,
            ..CountdownConfig::for_difficulty(difficulty)
        };
        let data = cfg.generate().unwrap();
        assert_eq!(data.len(), 150);
        let verifier = CountdownVerifier::default();
        for item in data.items() {
            let ns = nums(item);
            let target = item.meta["target"].as_i64().unwrap();
            assert!((cfg.min_numbers..=cfg.max_numbers).contains(&ns.len()));
            assert!(
                ns.iter()
                    .all(|n| (cfg.min_number..=cfg.max_number).contains(n))
            );
            assert!((cfg.min_target..=cfg.max_target).contains(&target));
            assert_eq!(item.answer, target.to_string());
            assert!(
                countdown_solvable(&ns, target),
                "{ns:?} -> {target} unreachable"
            );
            // The recorded solution is accepted by the verifier.
            let sol = item.meta["solution"].as_str().unwrap();
            let v = verifier
                .verify(item, &format!("<answer>{sol}</answer>"))
                .unwrap();
            assert!(v.correct, "{sol}: {}", v.reason);
            assert!(item.prompt.contains(&format!("equals {target}")));
            assert_eq!(item.meta["difficulty"], difficulty.as_str());
        }
    }
}

#[test]
fn brute_force_oracle_can_say_no() {
    // The oracle must be able to fail: 1, 1, 1 cannot make 100, and 2, 3, 4 cannot make 1000.
    assert!(!countdown_solvable(&[1, 1, 1], 100));
    assert!(!countdown_solvable(&[2, 3, 4], 1000));
    assert!(countdown_solvable(&[44, 19, 35], 98));
    // 24 from 1, 5, 5, 5 needs a fractional intermediate: 5 * (5 - 1/5).
    assert!(countdown_solvable(&[1, 5, 5, 5], 24));
}

#[test]
fn countdown_is_deterministic_by_seed() {
    let a = CountdownConfig {
        count: 50,
        seed: 1,
        ..Default::default()
    }
    .generate()
    .unwrap();
    let b = CountdownConfig {
        count: 50,
        seed: 1,
        ..Default::default()
    }
    .generate()
    .unwrap();
    let c = CountdownConfig {
        count: 50,
        seed: 2,
        ..Default::default()
    }
    .generate()
    .unwrap();
    assert_eq!(a, b);
    let problems = |d: &Dataset| {
        d.items()
            .iter()
            .map(|i| (nums(i), i.answer.clone()))
            .collect::<Vec<_>>()
    };
    assert_ne!(problems(&a), problems(&c));
    // A longer run starts with the shorter one.
    let long = CountdownConfig {
        count: 80,
        seed: 1,
        ..Default::default()
    }
    .generate()
    .unwrap();
    assert_eq!(&long.items()[..50], a.items());
}

#[test]
fn difficulty_levels_are_graded() {
    let make = |d| {
        CountdownConfig {
            count: 200,
            ..CountdownConfig::for_difficulty(d)
        }
        .generate()
        .unwrap()
    };
    let mean_target = |d: &Dataset| {
        d.items()
            .iter()
            .map(|i| i.meta["target"].as_i64().unwrap() as f64)
            .sum::<f64>()
            / d.len() as f64
    };
    let (easy, medium, hard) = (
        make(Difficulty::Easy),
        make(Difficulty::Medium),
        make(Difficulty::Hard),
    );
    assert!(
        easy.items()
            .iter()
            .all(|i| nums(i).len() == 3 && nums(i).iter().all(|&n| n <= 20))
    );
    assert!(hard.items().iter().all(|i| nums(i).len() == 4));
    let four = medium.items().iter().filter(|i| nums(i).len() == 4).count();
    assert!(
        (40..=160).contains(&four),
        "medium mixes 3 and 4 numbers: {four}/200"
    );
    assert!(mean_target(&easy) < mean_target(&medium) && mean_target(&medium) < mean_target(&hard));
}

#[test]
fn generated_files_read_back_through_the_loader() {
    let dir = TempDir::new("gen");
    let cd = CountdownConfig {
        count: 20,
        ..Default::default()
    }
    .generate()
    .unwrap();
    let ar = ArithmeticConfig {
        count: 20,
        ..Default::default()
    }
    .generate()
    .unwrap();
    for (name, data) in [("cd.jsonl", &cd), ("ar.jsonl", &ar)] {
        let path = dir.path().join(name);
        data.write_jsonl(&path).unwrap();
        assert_eq!(
            &Dataset::from_jsonl(&path, &DatasetConfig::default()).unwrap(),
            data
        );
    }
}

#[test]
fn arithmetic_answers_match_an_independent_evaluation() {
    for difficulty in [Difficulty::Easy, Difficulty::Medium, Difficulty::Hard] {
        let cfg = ArithmeticConfig {
            count: 300,
            seed: 5,
            ..ArithmeticConfig::for_difficulty(difficulty)
        };
        let data = cfg.generate().unwrap();
        let mut ops_seen = std::collections::HashSet::new();
        for item in data.items() {
            // Read the operands back from the prompt text, not from the generator's fields.
            let body = item.prompt.strip_prefix("What is ").unwrap();
            let body = &body[..body.find('?').unwrap()];
            let parts: Vec<&str> = body.split(' ').collect();
            let (a, op, b): (i128, &str, i128) = (
                parts[0].parse().unwrap(),
                parts[1],
                parts[2].parse().unwrap(),
            );
            let expected = match op {
                "+" => a + b,
                "-" => a - b,
                "*" => a * b,
                other => panic!("unexpected op {other}"),
            };
            assert_eq!(item.answer, expected.to_string());
            for x in [a, b] {
                let digits = x.to_string().len() as u32;
                assert!((cfg.min_digits..=cfg.max_digits).contains(&digits), "{x}");
            }
            ops_seen.insert(op.to_string());
        }
        let want: std::collections::HashSet<String> =
            cfg.ops.iter().map(|o| o.symbol().to_string()).collect();
        assert_eq!(ops_seen, want);
    }
    let a = ArithmeticConfig::default().generate().unwrap();
    assert_eq!(a, ArithmeticConfig::default().generate().unwrap());
    assert_ne!(
        a,
        ArithmeticConfig {
            seed: 43,
            ..Default::default()
        }
        .generate()
        .unwrap()
    );
}

#[test]
fn invalid_generator_configs_name_the_field() {
    let bad = CountdownConfig {
        min_numbers: 5,
        max_numbers: 4,
        ..Default::default()
    };
    assert!(
        matches!(bad.generate(), Err(TaskError::Config { field, .. }) if field == "countdown.max_numbers")
    );
    let bad = CountdownConfig {
        min_number: 0,
        ..Default::default()
    };
    assert!(
        matches!(bad.generate(), Err(TaskError::Config { field, .. }) if field == "countdown.max_number")
    );
    // An unreachable target range is reported, not looped on forever.
    let impossible = CountdownConfig {
        count: 1,
        min_numbers: 3,
        max_numbers: 3,
        min_number: 1,
        max_number: 1,
        min_target: 500,
        max_target: 600,
        ..Default::default()
    };
    assert!(
        matches!(impossible.generate(), Err(TaskError::Config { field, .. }) if field == "countdown")
    );
    let bad = ArithmeticConfig {
        ops: vec![],
        ..Default::default()
    };
    assert!(
        matches!(bad.generate(), Err(TaskError::Config { field, .. }) if field == "arithmetic.ops")
    );
    let bad = ArithmeticConfig {
        max_digits: 19,
        ..Default::default()
    };
    assert!(bad.generate().is_err());
    assert_eq!(ArithOp::Sub.apply(3, 5), -2);
}
