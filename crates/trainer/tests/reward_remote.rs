//! Reward functions outside Rust: `HttpReward` against loopback servers, `CommandReward`
//! against a JSON-lines child process, and `RewardFunctions` combining them.
//!
//! This target has its own `main` (`harness = false`): started with `RLFT_REWARD_CHILD` set,
//! the test binary itself is the reward subprocess, so no Python is needed. Every test is
//! bounded in time (loopback on 127.0.0.1:0, timeouts of a second or less).

use std::io::{BufRead, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rlft_core::{Completion, PromptGroup, RewardAggregation};
use rlft_tasks::{ExactMatch, TaskItem};
use rlft_trainer::{
    CommandReward, CommandRewardConfig, HttpReward, HttpRewardConfig, NamedReward, RewardConfig,
    RewardFunction, RewardFunctions, RewardKind, RewardRequest, Rewarder, TrainerError,
    VerifierFunction, reward_names,
};
use serde_json::{Value, json};

const CHILD: &str = "RLFT_REWARD_CHILD";

/// The child: one `{"items": [...]}` line in, one `{"scores": [...]}` line out. Score = the
/// completion's length; "none" → null; "die" → exit 3 after a stderr line; "hang" → sleeps.
fn child() {
    let stdin = std::io::stdin();
    let mut out = std::io::stdout();
    for line in stdin.lock().lines() {
        let body: Value = serde_json::from_str(&line.unwrap()).unwrap();
        let mut scores = Vec::new();
        for it in body["items"].as_array().unwrap() {
            let c = it["completion"].as_str().unwrap();
            match c {
                "die" => {
                    eprintln!("dying on purpose");
                    std::process::exit(3);
                }
                "hang" => std::thread::sleep(Duration::from_secs(30)),
                "none" => scores.push(Value::Null),
                _ => scores.push(json!(
                    c.len() as f64 + it["meta"]["bonus"].as_f64().unwrap_or(0.0)
                )),
            }
        }
        writeln!(out, "{}", json!({ "scores": scores })).unwrap();
        out.flush().unwrap();
    }
}

fn items() -> Vec<TaskItem> {
    let mut a = TaskItem::new("a", "1+1=", "2");
    a.meta.insert("bonus".into(), json!(0.5));
    vec![a, TaskItem::new("b", "2+2=", "4")]
}

fn requests<'a>(items: &'a [TaskItem], texts: &'a [&'a str]) -> Vec<RewardRequest<'a>> {
    texts
        .iter()
        .enumerate()
        .map(|(i, t)| RewardRequest {
            item: &items[i % items.len()],
            completion: t,
        })
        .collect()
}

fn command(timeout_s: f64, batch_size: usize) -> CommandReward {
    // `env VAR=1 <this binary>`: the variable turns the test binary into the child.
    let exe = std::env::current_exe().unwrap();
    CommandReward::new(CommandRewardConfig {
        timeout_s,
        batch_size,
        ..CommandRewardConfig::new(vec![
            "env".into(),
            format!("{CHILD}=1"),
            exe.to_string_lossy().into_owned(),
        ])
    })
    .unwrap()
}

fn command_scores_batches_and_keeps_one_process() {
    let it = items();
    let f = command(5.0, 2);
    let got = f
        .score_batch(&requests(&it, &["abc", "none", "hello", "x", "yy"]))
        .unwrap();
    assert_eq!(got[0], 3.5); // "abc" + item a's meta bonus
    assert!(got[1].is_nan());
    assert_eq!(&got[2..], &[5.5, 1.0, 2.5]);
    f.score_batch(&requests(&it, &["q"])).unwrap();
    assert_eq!(f.starts(), 1, "one process across batches");
}

fn command_death_is_a_clear_error_and_restarts() {
    let it = items();
    let f = command(5.0, 8);
    assert_eq!(f.score_batch(&requests(&it, &["ok"])).unwrap(), vec![2.5]);
    let err = f
        .score_batch(&requests(&it, &["fine", "die"]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("exit status: 3"), "{err}");
    assert!(err.contains("dying on purpose"), "{err}");
    assert!(err.contains("restarts"), "{err}");
    // The next batch runs in a fresh process.
    assert_eq!(f.score_batch(&requests(&it, &["ok"])).unwrap(), vec![2.5]);
    assert_eq!(f.starts(), 2);
}

fn command_timeout_kills_the_process() {
    let it = items();
    let f = command(0.5, 8);
    let t0 = Instant::now();
    let err = f.score_batch(&requests(&it, &["hang"])).unwrap_err();
    assert!(t0.elapsed() < Duration::from_secs(10));
    assert!(err.to_string().contains("no reply within 0.5 s"), "{err}");
    assert_eq!(f.score_batch(&requests(&it, &["ok"])).unwrap(), vec![2.5]);
}

fn command_that_cannot_start_is_an_error() {
    let f = CommandReward::new(CommandRewardConfig::new(vec![
        "/nonexistent/rlft-reward".into(),
    ]))
    .unwrap();
    let it = items();
    let err = f.score_batch(&requests(&it, &["x"])).unwrap_err();
    assert!(matches!(err, TrainerError::Reward { .. }), "{err}");
    assert!(err.to_string().contains("cannot start"), "{err}");
    assert!(CommandReward::new(CommandRewardConfig::new(vec![])).is_err());
}

/// A loopback HTTP server answering each connection with the next of `replies` (status,
/// body); a body of `None` never answers. Records the request bodies.
struct Server {
    url: String,
    bodies: Arc<Mutex<Vec<Value>>>,
    handle: JoinHandle<()>,
}

fn server(replies: Vec<(u16, Option<String>)>) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/reward", listener.local_addr().unwrap());
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&bodies);
    let handle = std::thread::spawn(move || {
        for (status, body) in replies {
            let (mut s, _) = listener.accept().unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            let (head_end, len) = loop {
                let n = s.read(&mut chunk).unwrap();
                assert!(n > 0, "client closed early");
                buf.extend_from_slice(&chunk[..n]);
                if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&buf[..i]).to_ascii_lowercase();
                    let len = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .map_or(0, |v| v.trim().parse::<usize>().unwrap());
                    break (i + 4, len);
                }
            };
            while buf.len() < head_end + len {
                let n = s.read(&mut chunk).unwrap();
                buf.extend_from_slice(&chunk[..n]);
            }
            seen.lock()
                .unwrap()
                .push(serde_json::from_slice(&buf[head_end..head_end + len]).unwrap());
            match body {
                Some(b) => {
                    let reply = format!(
                        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{b}",
                        b.len()
                    );
                    s.write_all(reply.as_bytes()).unwrap();
                }
                None => std::thread::sleep(Duration::from_millis(1500)),
            }
        }
    });
    Server {
        url,
        bodies,
        handle,
    }
}

fn http(url: &str, retries: u32, batch_size: usize) -> HttpReward {
    HttpReward::new(HttpRewardConfig {
        timeout_s: 0.5,
        retries,
        batch_size,
        ..HttpRewardConfig::new(url)
    })
    .unwrap()
}

fn http_posts_batches_and_reads_scores() {
    let s = server(vec![
        (200, Some(r#"{"scores": [1.0, null]}"#.into())),
        (200, Some(r#"{"scores": [0.25]}"#.into())),
    ]);
    let it = items();
    let got = http(&s.url, 0, 2)
        .score_batch(&requests(&it, &["<answer>2</answer>", "", "x"]))
        .unwrap();
    assert_eq!(got[0], 1.0);
    assert!(got[1].is_nan());
    assert_eq!(got[2], 0.25);
    s.handle.join().unwrap();
    let bodies = s.bodies.lock().unwrap();
    assert_eq!(bodies.len(), 2);
    let first = &bodies[0]["items"][0];
    assert_eq!(first["prompt"], "1+1=");
    assert_eq!(first["completion"], "<answer>2</answer>");
    assert_eq!(first["answer"], "2");
    assert_eq!(first["meta"]["id"], "a");
    assert_eq!(first["meta"]["bonus"], 0.5);
    assert_eq!(bodies[1]["items"].as_array().unwrap().len(), 1);
}

fn http_retries_a_server_error_then_fails_without_retries() {
    let s = server(vec![
        (503, Some("{}".into())),
        (200, Some(r#"{"scores": [2.0]}"#.into())),
    ]);
    let it = items();
    assert_eq!(
        http(&s.url, 1, 8)
            .score_batch(&requests(&it, &["a"]))
            .unwrap(),
        vec![2.0]
    );
    s.handle.join().unwrap();
    let s = server(vec![(503, Some("{}".into()))]);
    let err = http(&s.url, 0, 8)
        .score_batch(&requests(&it, &["a"]))
        .unwrap_err();
    assert!(err.to_string().contains("503"), "{err}");
    s.handle.join().unwrap();
}

fn http_timeout_and_bad_replies_are_errors() {
    let it = items();
    let s = server(vec![(200, None)]);
    let t0 = Instant::now();
    let err = http(&s.url, 0, 8)
        .score_batch(&requests(&it, &["a"]))
        .unwrap_err();
    assert!(t0.elapsed() < Duration::from_secs(5), "{err}");
    s.handle.join().unwrap();
    for (body, needle) in [
        (r#"{"scores": [1.0, 2.0]}"#, "expected 1 scores, got 2"),
        (r#"{"score": 1.0}"#, "not the expected JSON"),
    ] {
        let s = server(vec![(200, Some(body.into()))]);
        let err = http(&s.url, 0, 8)
            .score_batch(&requests(&it, &["a"]))
            .unwrap_err();
        assert!(err.to_string().contains(needle), "{err}");
        s.handle.join().unwrap();
    }
    assert!(HttpReward::new(HttpRewardConfig::new("ftp://x")).is_err());
}

fn group(prompt_index: usize, texts: &[&str]) -> PromptGroup {
    PromptGroup {
        prompt_index,
        completions: texts
            .iter()
            .map(|t| Completion {
                text: t.to_string(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

fn several_functions_combine_and_report_means() {
    let it = items();
    let verdict = ExactMatch::default();
    let make = |aggregation| {
        RewardFunctions::new(
            vec![
                NamedReward {
                    name: "exact".into(),
                    weight: 1.0,
                    function: Box::new(VerifierFunction(ExactMatch::default())),
                },
                NamedReward {
                    name: "length".into(),
                    weight: 0.5,
                    function: Box::new(command(5.0, 64)),
                },
            ],
            aggregation,
            &verdict,
            it.clone(),
        )
    };
    let texts = ["<answer>2</answer>", "none", "<answer>3</answer>", "ab"];
    let r = make(RewardAggregation::SumThenNormalize);
    let mut groups = vec![group(0, &texts[..2]), group(1, &texts[2..])];
    r.score_groups(&mut groups).unwrap();
    let rewards: Vec<f32> = groups.iter().flat_map(|g| g.rewards()).collect();
    // exact + 0.5 · (len + bonus): row 1 has no length score, only exact's 0.
    assert_eq!(rewards, vec![1.0 + 0.5 * 18.5, 0.0, 0.5 * 18.0, 0.5 * 2.0]);
    let correct: Vec<_> = groups
        .iter()
        .flat_map(|g| g.completions.iter().map(|c| c.correct))
        .collect();
    assert_eq!(
        correct,
        vec![Some(true), Some(false), Some(false), Some(false)]
    );
    let m = r.take_metrics();
    assert_eq!(m[0], ("reward/exact".into(), 0.25));
    assert_eq!(m[1], ("reward/length".into(), (18.5 + 18.0 + 2.0) / 3.0));
    // Read once per step: the next call starts afresh.
    assert!(r.take_metrics().iter().all(|(_, v)| v.is_nan()));

    // normalize_then_sum z-scores each function within its group of two.
    let r = make(RewardAggregation::NormalizeThenSum);
    let mut groups = vec![group(0, &texts[..2]), group(1, &texts[2..])];
    r.score_groups(&mut groups).unwrap();
    let rewards: Vec<f32> = groups.iter().flat_map(|g| g.rewards()).collect();
    let z = 0.5f32.sqrt(); // (1 − 0.5) / std([1, 0]) with ε = 1e-4
    assert!((rewards[0] - z).abs() < 1e-3 && (rewards[1] + z).abs() < 1e-3);
    assert!((rewards[2] - 0.5 * z).abs() < 1e-3 && (rewards[3] + 0.5 * z).abs() < 1e-3);
}

fn reward_entries_parse_and_name() {
    let entries: Vec<RewardConfig> = serde_json::from_value(json!([
        {"kind": "exact_match", "weight": 2.0},
        {"kind": "http", "url": "http://127.0.0.1:1/r", "timeout_s": 3.0},
        {"kind": "command", "command": ["python3", "scripts/remote_reward.py"], "name": "py"},
        {"kind": "exact_match"},
    ]))
    .unwrap();
    assert_eq!(entries[0].weight, 2.0);
    assert_eq!(entries[3].weight, 1.0);
    assert!(
        matches!(&entries[1].kind, RewardKind::Http(c) if c.timeout_s == 3.0 && c.retries == 2)
    );
    assert!(matches!(&entries[2].kind, RewardKind::Command(c) if c.command.len() == 2));
    assert_eq!(
        reward_names(&entries).unwrap(),
        vec!["exact_match_0", "http", "py", "exact_match_3"]
    );
    // Round trip through serialisation (config.json).
    let back: Vec<RewardConfig> =
        serde_json::from_value(serde_json::to_value(&entries).unwrap()).unwrap();
    assert_eq!(back, entries);
    for (bad, needle) in [
        (
            json!({"kind": "http", "url": "http://x", "retires": 1}),
            "retires",
        ),
        (json!({"weight": 1.0}), "reward.kind is missing"),
        (json!({"kind": "math", "nope": 1}), "nope"),
    ] {
        let err = serde_json::from_value::<RewardConfig>(bad)
            .unwrap_err()
            .to_string();
        assert!(err.contains(needle), "{err}");
    }
    let dup: Vec<RewardConfig> = serde_json::from_value(json!([
        {"kind": "math", "name": "a"}, {"kind": "countdown", "name": "a"}
    ]))
    .unwrap();
    assert!(reward_names(&dup).is_err());
}

fn main() {
    if std::env::var_os(CHILD).is_some() {
        child();
        return;
    }
    let tests: [(&str, fn()); 9] = [
        (
            "command_scores_batches_and_keeps_one_process",
            command_scores_batches_and_keeps_one_process,
        ),
        (
            "command_death_is_a_clear_error_and_restarts",
            command_death_is_a_clear_error_and_restarts,
        ),
        (
            "command_timeout_kills_the_process",
            command_timeout_kills_the_process,
        ),
        (
            "command_that_cannot_start_is_an_error",
            command_that_cannot_start_is_an_error,
        ),
        (
            "http_posts_batches_and_reads_scores",
            http_posts_batches_and_reads_scores,
        ),
        (
            "http_retries_a_server_error_then_fails_without_retries",
            http_retries_a_server_error_then_fails_without_retries,
        ),
        (
            "http_timeout_and_bad_replies_are_errors",
            http_timeout_and_bad_replies_are_errors,
        ),
        (
            "several_functions_combine_and_report_means",
            several_functions_combine_and_report_means,
        ),
        (
            "reward_entries_parse_and_name",
            reward_entries_parse_and_name,
        ),
    ];
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let (mut passed, mut failed) = (0, 0);
    for (name, test) in tests {
        if !filter.is_empty() && !filter.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        match std::panic::catch_unwind(test) {
            Ok(()) => {
                println!("test {name} ... ok");
                passed += 1;
            }
            Err(_) => {
                println!("test {name} ... FAILED");
                failed += 1;
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    if failed > 0 {
        std::process::exit(1);
    }
}
