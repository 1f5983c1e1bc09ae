//! Verifiers: the trait's impls, shaped scores, and property tests that no input panics.

mod common;

use common::Frac;
use proptest::prelude::*;
use rlft_tasks::{
    AnswerSource, CountdownVerifier, ExactMatch, ExactMatchConfig, ExprError, ExprLimits,
    FnVerifier, FormatReward, MathVerifier, Reason, TaskItem, Verdict, Verifier, math_equivalent,
    normalize_math_answer, parse_expression, parse_think_answer,
};

fn countdown_item() -> TaskItem {
    TaskItem::new("cd", "make 24", "24")
        .with_meta("nums", serde_json::json!([1, 5, 5, 5]))
        .with_meta("target", 24)
}

fn math_item() -> TaskItem {
    TaskItem::new("m", "half?", "\\frac{1}{2}")
}

/// Every built-in verifier, as trait objects (this also checks object safety).
fn all_verifiers() -> Vec<(Box<dyn Verifier>, TaskItem)> {
    vec![
        (Box::new(MathVerifier::default()), math_item()),
        (Box::new(CountdownVerifier::default()), countdown_item()),
        (
            Box::new(FormatReward::new(CountdownVerifier::default(), 0.1)),
            countdown_item(),
        ),
        (Box::new(ExactMatch::default()), math_item()),
        (
            Box::new(ExactMatch::new(ExactMatchConfig {
                sources: vec![AnswerSource::Hash, AnswerSource::Whole],
                strip_punctuation: true,
                ..Default::default()
            })),
            math_item(),
        ),
    ]
}

fn check_all(text: &str) {
    for (v, item) in all_verifiers() {
        let verdict = v.verify(&item, text).expect("items are valid");
        assert!(verdict.score.is_finite() && (0.0..=1.0).contains(&verdict.score));
        assert_eq!(verdict.correct, verdict.reason == Reason::Correct);
        let _ = verdict.reason.to_string();
    }
    let _ = normalize_math_answer(text);
    let _ = parse_think_answer(text);
    let _ = parse_expression(text, &ExprLimits::default());
}

#[test]
fn countdown_with_format_reward_gives_tinyzero_scores() {
    let v = FormatReward::new(CountdownVerifier::default(), 0.1);
    let item = countdown_item();
    let score = |t: &str| v.verify(&item, t).unwrap().score;
    assert_eq!(score("<answer>5 * (5 - 1 / 5)</answer>"), 1.0);
    assert_eq!(score("<answer>5 * 5 - 1</answer>"), 0.1, "wrong numbers");
    assert_eq!(score("<answer>5 * 5 - 1 + 5</answer>"), 0.1, "wrong value");
    assert_eq!(
        score("<answer>five</answer>"),
        0.1,
        "unparseable but tagged"
    );
    assert_eq!(score("5 * (5 - 1 / 5)"), 0.0, "no tag");
    assert_eq!(v.name(), "countdown");
}

#[test]
fn trait_is_implemented_for_references_boxes_and_closures() {
    fn takes_verifier<V: Verifier>(v: V, item: &TaskItem, text: &str) -> bool {
        v.verify(item, text).unwrap().correct
    }
    let math = MathVerifier::default();
    let item = math_item();
    assert!(takes_verifier(&math, &item, "\\boxed{0.5}"));
    assert!(takes_verifier(
        Box::new(MathVerifier::default()),
        &item,
        "<answer>1/2</answer>"
    ));
    let dynv: Box<dyn Verifier> = Box::new(MathVerifier::default());
    assert!(takes_verifier(&dynv, &item, "#### .5"));
    assert!(!takes_verifier(&*dynv, &item, "#### 0.6"));
    let shared: std::sync::Arc<dyn Verifier + Send + Sync> =
        std::sync::Arc::new(MathVerifier::default());
    let handle = {
        let shared = std::sync::Arc::clone(&shared);
        let item = item.clone();
        std::thread::spawn(move || shared.verify(&item, "\\boxed{1/2}").unwrap().correct)
    };
    assert!(handle.join().unwrap());
    assert!(takes_verifier(shared, &item, "<answer>0.5</answer>"));
    let closure = FnVerifier::new(|item: &TaskItem, text: &str| {
        if text.len() == item.answer.len() {
            Verdict::correct(text)
        } else {
            Verdict::wrong(
                None,
                Reason::Other {
                    message: "length differs".into(),
                },
            )
        }
    })
    .named("same-length");
    assert_eq!(closure.name(), "same-length");
    assert!(takes_verifier(&closure, &item, "abcdefghijk"));
    let v = closure.verify(&item, "x").unwrap();
    assert_eq!(v.reason.to_string(), "length differs");
}

#[test]
fn huge_and_deeply_nested_inputs_do_not_panic() {
    let deep = 200_000;
    let inputs = [
        "\\boxed{".repeat(deep),
        format!("{}1{}", "\\boxed{".repeat(deep), "}".repeat(deep)),
        "{".repeat(1_000_000),
        "}".repeat(1_000_000),
        format!("<answer>{}1{}</answer>", "(".repeat(deep), ")".repeat(deep)),
        format!("<answer>{}</answer>", "1+".repeat(deep)),
        "<answer>".repeat(deep),
        "<think>".repeat(deep) + &"</think>".repeat(deep) + "<answer>",
        "</think><answer>".repeat(deep),
        format!(
            "<answer>\\frac{{{}1{}}}{{2}}</answer>",
            "\\frac{".repeat(deep),
            "}{2}".repeat(deep)
        ),
        format!("<answer>{}5</answer>", "-".repeat(deep)),
        format!("<answer>{}</answer>", "9".repeat(deep)),
        format!("<answer>{}</answer>", "\\text{".repeat(deep)),
        format!("#### {}", "1,000".repeat(deep)),
        "é−×÷\u{0}\u{FEFF}🙂".repeat(deep / 4),
    ];
    for text in &inputs {
        check_all(text);
    }
}

#[test]
fn countdown_rejects_deep_or_long_answers_with_bounds() {
    let v = CountdownVerifier::default();
    let item = countdown_item();
    let deep = format!(
        "<answer>{}5{} * (5 - 1 / 5)</answer>",
        "(".repeat(17),
        ")".repeat(17)
    );
    let r = v.verify(&item, &deep).unwrap();
    assert!(
        matches!(
            r.reason,
            Reason::BadExpression {
                error: ExprError::TooDeep { max: 16 }
            }
        ),
        "{r:?}"
    );
    let ok = format!(
        "<answer>{}5{} * (5 - 1 / 5)</answer>",
        "(".repeat(15),
        ")".repeat(15)
    );
    assert!(v.verify(&item, &ok).unwrap().correct);
    let long = format!("<answer>5 * (5 - 1 / 5){}</answer>", " + 0".repeat(80));
    assert!(matches!(
        v.verify(&item, &long).unwrap().reason,
        Reason::BadExpression {
            error: ExprError::TooLong { max: 256, .. }
        }
    ));
}

/// Pieces that exercise the parsers far more often than uniform Unicode does.
fn tricky() -> impl Strategy<Value = String> {
    let pieces = prop::sample::select(vec![
        "\\boxed{",
        "\\fbox{",
        "\\boxed ",
        "{",
        "}",
        "<answer>",
        "</answer>",
        "<think>",
        "</think>",
        "####",
        "\n",
        "\\frac",
        "\\dfrac",
        "\\sqrt",
        "\\text{",
        "\\left(",
        "\\right)",
        "(",
        ")",
        "1",
        "23",
        "0.50",
        ",",
        ".",
        "-",
        "−",
        "+",
        "*",
        "×",
        "÷",
        "/",
        "=",
        " ",
        "$",
        "%",
        "^\\circ",
        "||",
        "<|im_end|>",
        "x",
        "é",
        "🙂",
        "\u{0}",
    ]);
    prop::collection::vec(pieces, 0..64).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn verifiers_never_panic_on_arbitrary_unicode(text in any::<String>()) {
        check_all(&text);
    }

    #[test]
    fn verifiers_never_panic_on_tricky_fragments(text in tricky()) {
        check_all(&text);
    }

    #[test]
    fn parser_respects_bounds(text in "[0-9 ()+*/-]{0,40}", max_chars in 1usize..40, max_depth in 0usize..5) {
        let limits = ExprLimits { max_chars, max_depth, max_digits: 9 };
        let len = text.chars().count();
        match parse_expression(&text, &limits) {
            Ok(e) => {
                prop_assert!(len <= max_chars);
                // Independent depth count.
                let mut depth = 0i64;
                let mut deepest = 0i64;
                for c in text.chars() {
                    if c == '(' { depth += 1; deepest = deepest.max(depth); }
                    if c == ')' { depth -= 1; }
                }
                prop_assert!(deepest as usize <= max_depth);
                let literals: Vec<u64> = text
                    .split(|c: char| !c.is_ascii_digit())
                    .filter(|s| !s.is_empty())
                    .map(|s| s.parse().unwrap())
                    .collect();
                prop_assert_eq!(e.numbers, literals);
            }
            Err(ExprError::TooLong { len: l, max }) => {
                prop_assert_eq!((l, max), (len, max_chars));
                prop_assert!(len > max_chars);
            }
            Err(_) => prop_assert!(len <= max_chars),
        }
    }

    #[test]
    fn parser_agrees_with_a_tree_oracle(tree in expr_tree()) {
        let (text, value) = render(&tree);
        let got = parse_expression(&text, &ExprLimits { max_chars: 10_000, max_depth: 64, max_digits: 9 });
        match value {
            Some(v) => {
                let e = got.unwrap();
                prop_assert_eq!((e.value.numer(), e.value.denom()), (v.n, v.d), "{}", text);
            }
            None => prop_assert!(got.is_err(), "{} should fail (division by zero)", text),
        }
    }

    #[test]
    fn unparenthesised_chains_follow_precedence(
        first in 0u64..50,
        rest in prop::collection::vec((prop::sample::select(vec!['+', '-', '*', '/']), 1u64..50), 0..8),
    ) {
        let mut text = first.to_string();
        for (op, n) in &rest {
            text.push_str(&format!(" {} {}", op, n));
        }
        // Oracle: fold * and / into terms left to right, then sum the signed terms.
        let mut terms: Vec<(char, Frac)> = vec![('+', Frac { n: first as i128, d: 1 })];
        for (op, n) in &rest {
            let v = Frac { n: *n as i128, d: 1 };
            match op {
                '*' | '/' => {
                    let (sign, last) = terms.pop().unwrap();
                    let folded = if *op == '*' { last.mul(v) } else { last.div(v) }.unwrap();
                    terms.push((sign, folded));
                }
                _ => terms.push((*op, v)),
            }
        }
        let mut total = Frac { n: 0, d: 1 };
        for (sign, t) in terms {
            total = if sign == '+' { total.add(t) } else { total.sub(t) }.unwrap();
        }
        let e = parse_expression(&text, &ExprLimits::default()).unwrap();
        prop_assert_eq!((e.value.numer(), e.value.denom()), (total.n, total.d), "{}", text);
    }

    #[test]
    fn math_fraction_spellings_agree(p in -1_000_000i64..1_000_000, q in 1i64..1000) {
        let frac = format!("\\frac{{{}}}{{{}}}", p, q);
        let slash = format!("{}/{}", p, q);
        prop_assert!(math_equivalent(&frac, &slash));
        let boxed = format!("\\boxed{{{}}}", frac);
        let next = format!("{}/{}", p + 1, q);
        prop_assert!(math_equivalent(&boxed, &slash));
        prop_assert!(!math_equivalent(&slash, &next));
        // Decimal spelling when q is a power-of-ten divisor (2^a 5^b).
        let (mut r, mut k) = (q, 0u32);
        while r % 2 == 0 { r /= 2; k += 1; }
        while r % 5 == 0 { r /= 5; k += 1; }
        if r == 1 {
            let scale = 10i128.pow(k);
            let scaled = i128::from(p) * scale / i128::from(q);
            let sign = if scaled < 0 { "-" } else { "" };
            let a = scaled.abs();
            let dec = if k == 0 { format!("{}{}", sign, a) } else {
                format!("{}{}.{:0width$}0", sign, a / scale, a % scale, width = k as usize)
            };
            prop_assert!(math_equivalent(&dec, &slash), "{} vs {}", dec, slash);
        }
    }

    #[test]
    fn math_thousands_separators(n in 1_000u64..10_000_000_000) {
        let plain = n.to_string();
        let mut grouped = String::new();
        for (i, c) in plain.chars().enumerate() {
            if i > 0 && (plain.len() - i) % 3 == 0 { grouped.push(','); }
            grouped.push(c);
        }
        prop_assert!(math_equivalent(&grouped, &plain), "{}", grouped);
        let with_zeros = format!("{}.000", grouped);
        prop_assert!(math_equivalent(&with_zeros, &plain));
        prop_assert!(!math_equivalent(&grouped, &(n + 1).to_string()));
    }
}

#[derive(Debug, Clone)]
enum Tree {
    Leaf(u64),
    Node(char, Box<Tree>, Box<Tree>),
}

fn expr_tree() -> impl Strategy<Value = Tree> {
    let leaf = (0u64..60).prop_map(Tree::Leaf);
    leaf.prop_recursive(5, 32, 2, |inner| {
        (
            prop::sample::select(vec!['+', '-', '*', '/', '×', '÷', '−']),
            inner.clone(),
            inner,
        )
            .prop_map(|(op, a, b)| Tree::Node(op, Box::new(a), Box::new(b)))
    })
}

/// Fully parenthesised text and its exact value (None on division by zero or overflow).
fn render(t: &Tree) -> (String, Option<Frac>) {
    match t {
        Tree::Leaf(n) => (
            n.to_string(),
            Some(Frac {
                n: *n as i128,
                d: 1,
            }),
        ),
        Tree::Node(op, a, b) => {
            let (ta, va) = render(a);
            let (tb, vb) = render(b);
            let v = match (va, vb) {
                (Some(x), Some(y)) => match op {
                    '+' => x.add(y),
                    '-' | '−' => x.sub(y),
                    '*' | '×' => x.mul(y),
                    _ => x.div(y),
                },
                _ => None,
            };
            (format!("({ta} {op} {tb})"), v)
        }
    }
}
