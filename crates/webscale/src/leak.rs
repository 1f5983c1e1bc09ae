//! S6a: the deterministic leak guard (spec §1 S6, \[D\]).

/// Lower-case, delete the 32 ASCII punctuation characters, split on whitespace.
pub fn leak_tokens(text: &str) -> Vec<String> {
    let mut s = text.to_lowercase();
    s.retain(|c| !c.is_ascii_punctuation());
    s.split_whitespace().map(str::to_string).collect()
}

/// Whether the answer leaks into the question: the normalised answer (a leading "yes"/"no"
/// token dropped; the trailing period goes with the punctuation) is at least one token long
/// and occurs as a contiguous token run of the normalised question.
///
/// ```
/// use rlft_webscale::answer_leaks;
/// assert!(answer_leaks("Was the bridge, 40 meters long, built in 1890?", "40 meters."));
/// assert!(!answer_leaks("How long is the bridge?", "Forty meters."));
/// assert!(answer_leaks("Is Paris the capital of France?", "Yes, Paris."));
/// ```
pub fn answer_leaks(question: &str, answer: &str) -> bool {
    let q = leak_tokens(question);
    let mut a = leak_tokens(answer);
    if a.len() > 1 && matches!(a[0].as_str(), "yes" | "no") {
        a.remove(0);
    }
    !a.is_empty() && a.len() <= q.len() && q.windows(a.len()).any(|w| w == a.as_slice())
}
