//! When a completion ends: stop token ids (EOS included) and stop strings.
//!
//! A stop string may span token boundaries: after each token the completion's text is decoded
//! and searched from just before the previous end (far enough back to see a stop string that
//! the new token completes). On a match, as in OpenAI and vLLM, `text` is cut before the stop
//! string (or after it with `include_stop_str_in_output`), while `token_ids` and `logprobs`
//! keep **every sampled token up to and including the one that completed the match**, so the
//! text may end before the tokens do. A stop token id is kept in `token_ids` and `logprobs` and
//! left out of `text`.

use crate::params::SamplingParams;

/// How a completion ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Finish {
    /// Sampled a stop token id or EOS (the last token).
    StopToken,
    /// A stop string matched; `text` is cut at this byte offset.
    StopString {
        /// Byte length of the text to keep.
        keep: usize,
    },
    /// Reached `max_new_tokens`.
    Length,
}

/// Stop ids and strings of one request.
#[derive(Debug, Clone)]
pub(crate) struct StopCriteria {
    ids: Vec<u32>,
    strings: Vec<String>,
    include: bool,
    longest: usize,
}

impl StopCriteria {
    /// Stops of `params`, with the model's `eos_ids` unless `ignore_eos`.
    pub(crate) fn new(params: &SamplingParams, eos_ids: &[u32]) -> Self {
        let mut ids = params.stop_token_ids.clone();
        if !params.ignore_eos {
            ids.extend_from_slice(eos_ids);
        }
        Self {
            ids,
            strings: params.stop.clone(),
            include: params.include_stop_str_in_output,
            longest: params.stop.iter().map(String::len).max().unwrap_or(0),
        }
    }

    /// Whether `token` ends the completion.
    pub(crate) fn is_stop_token(&self, token: u32) -> bool {
        self.ids.contains(&token)
    }

    /// Whether there are stop strings (which need decoded text).
    pub(crate) fn has_strings(&self) -> bool {
        !self.strings.is_empty()
    }

    /// Search `text` for a stop string that may end after byte `searched` (the text's length at
    /// the previous check); returns the byte length of text to keep.
    pub(crate) fn check_text(&self, text: &str, searched: usize) -> Option<usize> {
        let mut from = searched
            .saturating_sub(self.longest.saturating_sub(1))
            .min(text.len());
        while !text.is_char_boundary(from) {
            from -= 1;
        }
        let (start, len) = find_stop(&text[from..], &self.strings)?;
        let start = from + start;
        Some(if self.include { start + len } else { start })
    }
}

/// The earliest occurrence of any of `stops` in `text`: `(byte start, byte length)`. At equal
/// starts the stop listed first wins.
pub fn find_stop(text: &str, stops: &[String]) -> Option<(usize, usize)> {
    stops
        .iter()
        .filter_map(|s| text.find(s.as_str()).map(|i| (i, s.len())))
        .min_by_key(|&(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn criteria(stop: &[&str], include: bool) -> StopCriteria {
        StopCriteria::new(
            &SamplingParams {
                stop: stop.iter().map(|s| s.to_string()).collect(),
                include_stop_str_in_output: include,
                stop_token_ids: vec![7],
                ..Default::default()
            },
            &[0],
        )
    }

    #[test]
    fn finds_a_stop_spanning_the_previous_check() {
        let c = criteria(&["###", "END"], false);
        // Previous check saw "abc#"; the new token adds "##x".
        assert_eq!(c.check_text("abc###x", 4), Some(3));
        assert_eq!(c.check_text("abc#", 0), None);
        let c = criteria(&["###"], true);
        assert_eq!(c.check_text("abc###x", 4), Some(6));
    }

    #[test]
    fn earliest_match_wins_and_multibyte_text_is_safe() {
        assert_eq!(
            find_stop("xxENDyy###", &["###".into(), "END".into()]),
            Some((2, 3))
        );
        let c = criteria(&["é!"], false);
        // The search start backs off to a char boundary inside "é".
        assert_eq!(c.check_text("aéé!", 5), Some(3));
    }

    #[test]
    fn stop_ids_include_eos_unless_ignored() {
        let c = criteria(&[], false);
        assert!(c.is_stop_token(7) && c.is_stop_token(0) && !c.is_stop_token(1));
        let c = StopCriteria::new(
            &SamplingParams {
                ignore_eos: true,
                ..Default::default()
            },
            &[0],
        );
        assert!(!c.is_stop_token(0));
    }
}
