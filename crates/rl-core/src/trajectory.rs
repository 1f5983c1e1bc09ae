//! Multi-turn trajectories: conversations whose assistant turns carry the loss.

use serde::{Deserialize, Serialize};

/// Who speaks a turn, with the names chat templates use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// System prompt.
    System,
    /// User or environment message (task statement, feedback such as "try again").
    User,
    /// Model output.
    Assistant,
}

/// One turn of a conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Turn {
    /// Speaker.
    pub role: Role,
    /// Text of the turn.
    pub content: String,
    /// Token ids of the turn as rendered by the chat template, when known.
    #[serde(default)]
    pub token_ids: Vec<u32>,
    /// Whether this turn's tokens carry loss. Defaults to true for assistant turns only.
    #[serde(default)]
    pub trainable: Option<bool>,
    /// Reward given for this turn (e.g. per-turn correctness in DRIFT), if any.
    #[serde(default)]
    pub reward: Option<f32>,
}

impl Turn {
    /// A turn with only a role and text.
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
            token_ids: Vec::new(),
            trainable: None,
            reward: None,
        }
    }

    /// Whether the turn's tokens carry loss: the explicit flag if set, else assistant turns.
    pub fn carries_loss(&self) -> bool {
        self.trainable.unwrap_or(self.role == Role::Assistant)
    }
}

/// A multi-turn episode for one prompt, sampled once and then weighted or trained on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trajectory {
    /// Index of the prompt in its dataset.
    pub prompt_index: usize,
    /// The turns, in order.
    pub turns: Vec<Turn>,
    /// Scalar return of the episode (e.g. DRIFT's R), if computed.
    #[serde(default)]
    pub ret: Option<f32>,
    /// Per-example training weight (e.g. DRIFT's normalised exp(R/β)); 1 when unset.
    #[serde(default)]
    pub weight: Option<f32>,
}

impl Trajectory {
    /// Sum of the per-turn rewards that are set.
    pub fn total_reward(&self) -> f32 {
        self.turns.iter().filter_map(|t| t.reward).sum()
    }

    /// Number of assistant turns.
    pub fn assistant_turns(&self) -> usize {
        self.turns
            .iter()
            .filter(|t| t.role == Role::Assistant)
            .count()
    }

    /// Flattened token ids with a per-token loss mask (1 on tokens of turns that carry loss).
    /// Turns without token ids contribute nothing.
    pub fn tokens_and_loss_mask(&self) -> (Vec<u32>, Vec<f32>) {
        let mut ids = Vec::new();
        let mut mask = Vec::new();
        for t in &self.turns {
            let m = if t.carries_loss() { 1.0 } else { 0.0 };
            ids.extend_from_slice(&t.token_ids);
            mask.extend(std::iter::repeat_n(m, t.token_ids.len()));
        }
        (ids, mask)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loss_mask_follows_roles_and_overrides() {
        let mut sys = Turn::new(Role::System, "s");
        sys.token_ids = vec![1, 2];
        let mut a = Turn::new(Role::Assistant, "a");
        a.token_ids = vec![3];
        let mut u = Turn::new(Role::User, "u");
        u.token_ids = vec![4, 5];
        u.trainable = Some(true);
        let t = Trajectory {
            prompt_index: 0,
            turns: vec![sys, a, u],
            ret: None,
            weight: None,
        };
        let (ids, mask) = t.tokens_and_loss_mask();
        assert_eq!(ids, vec![1, 2, 3, 4, 5]);
        assert_eq!(mask, vec![0.0, 0.0, 1.0, 1.0, 1.0]);
    }

    #[test]
    fn serde_roundtrip_uses_lowercase_roles() {
        let t = Trajectory {
            prompt_index: 3,
            turns: vec![Turn::new(Role::User, "hi")],
            ret: Some(1.0),
            weight: None,
        };
        let s = serde_json::to_string(&t).unwrap();
        assert!(s.contains(r#""role":"user""#));
        let back: Trajectory = serde_json::from_str(&s).unwrap();
        assert_eq!(back, t);
    }
}
