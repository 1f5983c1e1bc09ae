//! Policy batches: the padded token layout and per-row training signals that an objective
//! consumes, on the host ([`PolicyBatch`]) and on a device ([`PolicyTensors`]).

#[cfg(feature = "tensor")]
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::advantage::Advantages;
use crate::error::{CoreError, Result};
use crate::group::PromptGroup;

/// Options for building a [`PolicyBatch`] from prompt groups.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BatchOptions {
    /// Token id used for padding. Default 0.
    pub pad_id: u32,
    /// Drop truncated completions (those that did not finish) from the loss. Default false:
    /// TRL `mask_truncated_completions = False`.
    pub mask_truncated: bool,
}

/// A batch of completions laid out as TRL lays them out: prompts left-padded to `prompt_len`,
/// completions right-padded to `completion_len`, so that `prompt ++ completion` is one row the
/// model can score. All matrices are row-major, `rows × len`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyBatch {
    /// Number of rows (completions).
    pub rows: usize,
    /// Padded prompt length P.
    pub prompt_len: usize,
    /// Padded completion length T.
    pub completion_len: usize,
    /// Prompt ids, `rows × P`, left-padded with the pad id.
    pub prompt_ids: Vec<u32>,
    /// 1 on real prompt tokens, 0 on padding, `rows × P`.
    pub prompt_mask: Vec<f32>,
    /// Completion ids, `rows × T`, right-padded with the pad id.
    pub completion_ids: Vec<u32>,
    /// 1 on real completion tokens, 0 on padding, `rows × T` (the attention mask of the
    /// completion part).
    pub completion_mask: Vec<f32>,
    /// 1 on completion tokens that carry loss, 0 elsewhere, `rows × T`; a subset of
    /// `completion_mask` (rows an estimator dropped and, optionally, truncated rows are 0).
    pub loss_mask: Vec<f32>,
    /// Log-probs of the completion tokens under the sampling (old) policy, `rows × T`.
    pub old_logps: Option<Vec<f32>>,
    /// Log-probs under the reference policy, `rows × T` (needed when the KL coefficient is
    /// non-zero).
    pub ref_logps: Option<Vec<f32>>,
    /// One advantage per row.
    pub advantages: Vec<f32>,
    /// Which prompt group each row came from (index into the groups it was built from).
    pub group_index: Vec<usize>,
}

impl PolicyBatch {
    /// Lays out `groups` with their `advantages` (one per completion, in group order).
    ///
    /// `old_logps` and `ref_logps` are left `None`: the engine's sampling log-probs stay on
    /// the [`Completion`](crate::Completion)s and are not copied, because the trainer scores
    /// old log-probs with the same scorer as the loss (a marginal scorer's old log-probs are
    /// not the engine's). Rows that the advantage estimator excluded (`keep == false`) and,
    /// with `mask_truncated`, unfinished completions get an all-zero loss mask; otherwise a
    /// completion's own per-token `loss_mask` (when set) decides which tokens carry loss.
    ///
    /// # Errors
    /// Also [`CoreError::ShapeMismatch`] when a completion's `loss_mask` is set but not one
    /// value per token.
    ///
    /// # Errors
    /// [`CoreError::EmptyBatch`] when there is no completion; [`CoreError::ShapeMismatch`] when
    /// the number of advantages differs from the number of completions.
    pub fn from_groups(
        groups: &[PromptGroup],
        advantages: &Advantages,
        opts: &BatchOptions,
    ) -> Result<Self> {
        let rows: usize = groups.iter().map(|g| g.completions.len()).sum();
        if rows == 0 {
            return Err(CoreError::EmptyBatch { what: "groups" });
        }
        if advantages.values.len() != rows || advantages.keep.len() != rows {
            return Err(CoreError::ShapeMismatch {
                what: "advantages",
                expected: vec![rows],
                found: vec![advantages.values.len()],
            });
        }
        let p = groups.iter().map(|g| g.prompt_ids.len()).max().unwrap_or(0);
        let t = groups
            .iter()
            .flat_map(|g| g.completions.iter().map(|c| c.token_ids.len()))
            .max()
            .unwrap_or(0);
        if let Some(c) = groups
            .iter()
            .flat_map(|g| &g.completions)
            .find(|c| !c.loss_mask.is_empty() && c.loss_mask.len() != c.token_ids.len())
        {
            return Err(CoreError::ShapeMismatch {
                what: "completion loss_mask",
                expected: vec![c.token_ids.len()],
                found: vec![c.loss_mask.len()],
            });
        }
        let mut b = PolicyBatch {
            rows,
            prompt_len: p,
            completion_len: t,
            prompt_ids: vec![opts.pad_id; rows * p],
            prompt_mask: vec![0.0; rows * p],
            completion_ids: vec![opts.pad_id; rows * t],
            completion_mask: vec![0.0; rows * t],
            loss_mask: vec![0.0; rows * t],
            old_logps: None,
            ref_logps: None,
            advantages: advantages.values.clone(),
            group_index: Vec::with_capacity(rows),
        };
        let mut r = 0;
        for (gi, g) in groups.iter().enumerate() {
            for c in &g.completions {
                let off = p - g.prompt_ids.len();
                b.prompt_ids[r * p + off..(r + 1) * p].copy_from_slice(&g.prompt_ids);
                b.prompt_mask[r * p + off..(r + 1) * p].fill(1.0);
                let n = c.token_ids.len();
                b.completion_ids[r * t..r * t + n].copy_from_slice(&c.token_ids);
                b.completion_mask[r * t..r * t + n].fill(1.0);
                let trained = advantages.keep[r] && (c.finished || !opts.mask_truncated);
                if trained {
                    if c.loss_mask.is_empty() {
                        b.loss_mask[r * t..r * t + n].fill(1.0);
                    } else {
                        for (dst, &m) in b.loss_mask[r * t..r * t + n].iter_mut().zip(&c.loss_mask)
                        {
                            *dst = if m > 0.0 { 1.0 } else { 0.0 };
                        }
                    }
                }
                b.group_index.push(gi);
                r += 1;
            }
        }
        Ok(b)
    }

    /// Number of tokens that carry loss.
    pub fn active_tokens(&self) -> usize {
        self.loss_mask.iter().filter(|&&m| m > 0.0).count()
    }

    /// Checks that every field has the length its shape implies.
    ///
    /// # Errors
    /// [`CoreError::ShapeMismatch`] naming the first inconsistent field.
    pub fn validate(&self) -> Result<()> {
        let (n, p, t) = (self.rows, self.prompt_len, self.completion_len);
        let check = |what: &'static str, len: usize, expected: usize, shape: Vec<usize>| {
            if len == expected {
                Ok(())
            } else {
                Err(CoreError::ShapeMismatch {
                    what,
                    expected: shape,
                    found: vec![len],
                })
            }
        };
        check("prompt_ids", self.prompt_ids.len(), n * p, vec![n, p])?;
        check("prompt_mask", self.prompt_mask.len(), n * p, vec![n, p])?;
        check(
            "completion_ids",
            self.completion_ids.len(),
            n * t,
            vec![n, t],
        )?;
        check(
            "completion_mask",
            self.completion_mask.len(),
            n * t,
            vec![n, t],
        )?;
        check("loss_mask", self.loss_mask.len(), n * t, vec![n, t])?;
        if let Some(v) = &self.old_logps {
            check("old_logps", v.len(), n * t, vec![n, t])?;
        }
        if let Some(v) = &self.ref_logps {
            check("ref_logps", v.len(), n * t, vec![n, t])?;
        }
        check("advantages", self.advantages.len(), n, vec![n])?;
        check("group_index", self.group_index.len(), n, vec![n])
    }

    /// A new batch holding the given rows, in the given order (for mini-batches). Padded
    /// lengths are kept.
    ///
    /// # Errors
    /// [`CoreError::EmptyBatch`] for an empty selection, [`CoreError::ShapeMismatch`] for a
    /// row index out of range.
    pub fn select_rows(&self, rows: &[usize]) -> Result<Self> {
        if rows.is_empty() {
            return Err(CoreError::EmptyBatch { what: "rows" });
        }
        if let Some(&bad) = rows.iter().find(|&&r| r >= self.rows) {
            return Err(CoreError::ShapeMismatch {
                what: "row index",
                expected: vec![self.rows],
                found: vec![bad],
            });
        }
        let (p, t) = (self.prompt_len, self.completion_len);
        let take = |v: &[f32], w: usize| -> Vec<f32> {
            rows.iter()
                .flat_map(|&r| v[r * w..(r + 1) * w].iter().copied())
                .collect()
        };
        let take_u = |v: &[u32], w: usize| -> Vec<u32> {
            rows.iter()
                .flat_map(|&r| v[r * w..(r + 1) * w].iter().copied())
                .collect()
        };
        Ok(Self {
            rows: rows.len(),
            prompt_len: p,
            completion_len: t,
            prompt_ids: take_u(&self.prompt_ids, p),
            prompt_mask: take(&self.prompt_mask, p),
            completion_ids: take_u(&self.completion_ids, t),
            completion_mask: take(&self.completion_mask, t),
            loss_mask: take(&self.loss_mask, t),
            old_logps: self.old_logps.as_ref().map(|v| take(v, t)),
            ref_logps: self.ref_logps.as_ref().map(|v| take(v, t)),
            advantages: rows.iter().map(|&r| self.advantages[r]).collect(),
            group_index: rows.iter().map(|&r| self.group_index[r]).collect(),
        })
    }

    /// Moves the training signals (mask, advantages, old and reference log-probs) to `device`.
    ///
    /// # Errors
    /// [`CoreError::ShapeMismatch`] if the batch is internally inconsistent.
    #[cfg(feature = "tensor")]
    pub fn to_tensors(&self, device: &Device) -> Result<PolicyTensors> {
        self.validate()?;
        let shape = [self.rows, self.completion_len];
        let mat = |v: &[f32]| Tensor::<2>::from_data(TensorData::new(v.to_vec(), shape), device);
        Ok(PolicyTensors {
            mask: mat(&self.loss_mask),
            advantages: Tensor::<1>::from_data(
                TensorData::new(self.advantages.clone(), [self.rows]),
                device,
            ),
            old_logps: self.old_logps.as_deref().map(mat),
            ref_logps: self.ref_logps.as_deref().map(mat),
        })
    }
}

/// The training signals of a batch on a device: what an [`Objective`](crate::Objective) needs
/// besides the current policy's log-probs. Shapes: `mask`, `old_logps` and `ref_logps` are
/// `[B, T]`; `advantages` is `[B]`.
#[cfg(feature = "tensor")]
#[derive(Debug, Clone)]
pub struct PolicyTensors {
    /// Loss mask, 1 on completion tokens that carry loss.
    pub mask: Tensor<2>,
    /// One advantage per row.
    pub advantages: Tensor<1>,
    /// Log-probs under the sampling policy. When `None`, objectives use the detached current
    /// log-probs (TRL's on-policy shortcut: ratio 1, gradient ∇ℓ).
    pub old_logps: Option<Tensor<2>>,
    /// Log-probs under the reference policy, for the KL term.
    pub ref_logps: Option<Tensor<2>>,
}

#[cfg(feature = "tensor")]
impl PolicyTensors {
    /// Builds and shape-checks the signals.
    ///
    /// # Errors
    /// [`CoreError::ShapeMismatch`] when the advantages or log-prob tensors disagree with the
    /// mask, [`CoreError::EmptyBatch`] when the mask has no rows.
    pub fn new(
        mask: Tensor<2>,
        advantages: Tensor<1>,
        old_logps: Option<Tensor<2>>,
        ref_logps: Option<Tensor<2>>,
    ) -> Result<Self> {
        let s = Self {
            mask,
            advantages,
            old_logps,
            ref_logps,
        };
        s.check(None)?;
        Ok(s)
    }

    /// `[B, T]` of the mask.
    pub fn dims(&self) -> [usize; 2] {
        self.mask.dims()
    }

    /// Checks shapes against each other and, when given, against the current log-probs.
    pub(crate) fn check(&self, logps: Option<[usize; 2]>) -> Result<()> {
        let [b, t] = self.mask.dims();
        if b == 0 {
            return Err(CoreError::EmptyBatch { what: "mask" });
        }
        let mism = |what, found: Vec<usize>| CoreError::ShapeMismatch {
            what,
            expected: vec![b, t],
            found,
        };
        if let Some(d) = logps
            && d != [b, t]
        {
            return Err(mism("logps", d.to_vec()));
        }
        if self.advantages.dims() != [b] {
            return Err(CoreError::ShapeMismatch {
                what: "advantages",
                expected: vec![b],
                found: self.advantages.dims().to_vec(),
            });
        }
        for (what, v) in [
            ("old_logps", &self.old_logps),
            ("ref_logps", &self.ref_logps),
        ] {
            if let Some(v) = v
                && v.dims() != [b, t]
            {
                return Err(mism(what, v.dims().to_vec()));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::advantage::AdvantageEstimator;
    use crate::group::Completion;

    fn group(prompt: Vec<u32>, comps: &[(&[u32], f32, bool)]) -> PromptGroup {
        PromptGroup {
            prompt_index: 0,
            prompt_ids: prompt,
            completions: comps
                .iter()
                .map(|&(ids, reward, finished)| Completion {
                    token_ids: ids.to_vec(),
                    logprobs: vec![-0.5; ids.len()],
                    reward,
                    finished,
                    ..Default::default()
                })
                .collect(),
        }
    }

    #[test]
    fn layout_pads_prompts_left_and_completions_right() {
        let groups = vec![
            group(vec![5, 6, 7], &[(&[1, 2], 1.0, true), (&[3], 0.0, false)]),
            group(vec![8], &[(&[4, 4, 4], 0.0, true), (&[9], 0.0, true)]),
        ];
        let adv = AdvantageEstimator::DrGrpo
            .compute(&[1.0, 0.0, 0.0, 0.0], 2)
            .unwrap();
        let opts = BatchOptions {
            pad_id: 0,
            mask_truncated: true,
        };
        let b = PolicyBatch::from_groups(&groups, &adv, &opts).unwrap();
        assert_eq!((b.rows, b.prompt_len, b.completion_len), (4, 3, 3));
        assert_eq!(&b.prompt_ids[9..12], &[0, 0, 8]);
        assert_eq!(&b.prompt_mask[9..12], &[0.0, 0.0, 1.0]);
        assert_eq!(&b.completion_ids[0..3], &[1, 2, 0]);
        assert_eq!(&b.completion_mask[3..6], &[1.0, 0.0, 0.0]);
        // The truncated completion keeps its attention but loses its loss.
        assert_eq!(&b.loss_mask[3..6], &[0.0, 0.0, 0.0]);
        assert_eq!(b.active_tokens(), 2 + 3 + 1);
        assert_eq!(b.group_index, vec![0, 0, 1, 1]);
        // Engine log-probs are not copied: the trainer scores old log-probs itself.
        assert!(b.old_logps.is_none());
        let sub = b.select_rows(&[2, 0]).unwrap();
        assert_eq!(&sub.completion_ids[0..3], &[4, 4, 4]);
        assert_eq!(sub.advantages, vec![adv.values[2], adv.values[0]]);
        assert!(matches!(
            b.select_rows(&[4]),
            Err(CoreError::ShapeMismatch { .. })
        ));
    }

    #[test]
    fn per_token_loss_masks_select_tokens_and_respect_dropped_rows() {
        let mut groups = vec![group(
            vec![5],
            &[(&[1, 2, 3], 1.0, true), (&[4, 5], 0.0, true)],
        )];
        groups[0].completions[0].loss_mask = vec![1.0, 0.0, 1.0];
        groups[0].completions[1].loss_mask = vec![0.0, 1.0];
        let adv = Advantages {
            values: vec![1.0, -1.0],
            keep: vec![true, true],
        };
        let b = PolicyBatch::from_groups(&groups, &adv, &BatchOptions::default()).unwrap();
        assert_eq!(b.loss_mask, vec![1.0, 0.0, 1.0, 0.0, 1.0, 0.0]);
        // The attention mask still covers every token.
        assert_eq!(b.completion_mask, vec![1.0, 1.0, 1.0, 1.0, 1.0, 0.0]);
        let dropped = Advantages {
            values: vec![1.0, -1.0],
            keep: vec![true, false],
        };
        let b = PolicyBatch::from_groups(&groups, &dropped, &BatchOptions::default()).unwrap();
        assert_eq!(b.active_tokens(), 2);
        groups[0].completions[1].loss_mask = vec![1.0];
        assert!(matches!(
            PolicyBatch::from_groups(&groups, &adv, &BatchOptions::default()),
            Err(CoreError::ShapeMismatch {
                what: "completion loss_mask",
                ..
            })
        ));
    }

    #[test]
    fn bad_batches_are_typed_errors() {
        let adv = Advantages::default();
        assert_eq!(
            PolicyBatch::from_groups(&[], &adv, &BatchOptions::default()),
            Err(CoreError::EmptyBatch { what: "groups" })
        );
        let groups = vec![group(vec![1], &[(&[1], 1.0, true), (&[2], 0.0, true)])];
        assert!(matches!(
            PolicyBatch::from_groups(&groups, &adv, &BatchOptions::default()),
            Err(CoreError::ShapeMismatch {
                what: "advantages",
                ..
            })
        ));
    }
}
