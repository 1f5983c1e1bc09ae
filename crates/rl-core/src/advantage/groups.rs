//! Which completions form a group: k consecutive rows of one size (TRL), or rows that share a
//! uid, in any order and of any size (verl's `index`).

use std::collections::HashMap;
use std::hash::Hash;

use serde::{Deserialize, Serialize};

use crate::error::{CoreError, Result};

/// What a group-relative estimator does with a group of one completion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SingletonGroups {
    /// Reject it with [`CoreError::GroupTooSmall`]. Default: TRL's config rejects
    /// `num_generations < 2`, and a lone completion has no baseline.
    #[default]
    Error,
    /// verl 0.9.1 (`compute_grpo_outcome_advantage`, RLOO, REINFORCE++-baseline): the group's
    /// mean is 0 and its std 1, so the advantage is r / (1 + ε) for GRPO and r otherwise.
    Verl,
}

/// The rows of each group, groups in order of first appearance.
///
/// ```
/// use rlft_core::GroupIndex;
///
/// // verl's uids: interleaved, unequal sizes, a singleton.
/// let g = GroupIndex::from_uids(&["a", "b", "a", "c", "b", "a"]);
/// assert_eq!(g.groups(), &[vec![0, 2, 5], vec![1, 4], vec![3]]);
/// assert_eq!(GroupIndex::consecutive(4, 2)?.groups(), &[vec![0, 1], vec![2, 3]]);
/// assert_eq!(GroupIndex::from_sizes(&[1, 2]).groups(), &[vec![0], vec![1, 2]]);
/// # Ok::<(), rlft_core::CoreError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupIndex {
    groups: Vec<Vec<usize>>,
    rows: usize,
}

impl GroupIndex {
    /// `len` rows in consecutive groups of `k` (TRL's and rlft's default layout).
    ///
    /// # Errors
    /// [`CoreError::GroupTooSmall`] for k = 0; [`CoreError::RaggedGroups`] when `len` is not a
    /// multiple of k.
    pub fn consecutive(len: usize, k: usize) -> Result<Self> {
        if k == 0 {
            return Err(CoreError::GroupTooSmall { group_size: 0 });
        }
        if !len.is_multiple_of(k) {
            return Err(CoreError::RaggedGroups { len, group_size: k });
        }
        Ok(Self {
            groups: (0..len / k)
                .map(|g| (g * k..(g + 1) * k).collect())
                .collect(),
            rows: len,
        })
    }

    /// Consecutive groups of the given sizes (prompt groups of unequal size, one after another).
    pub fn from_sizes(sizes: &[usize]) -> Self {
        let mut start = 0;
        let groups = sizes
            .iter()
            .map(|&s| {
                let g = (start..start + s).collect();
                start += s;
                g
            })
            .collect();
        Self {
            groups,
            rows: start,
        }
    }

    /// Rows with equal uids form a group (verl's `index`: a uid per row, usually a uuid string
    /// per prompt).
    pub fn from_uids<U: Eq + Hash>(uids: &[U]) -> Self {
        let mut slot: HashMap<&U, usize> = HashMap::new();
        let mut groups: Vec<Vec<usize>> = Vec::new();
        for (row, uid) in uids.iter().enumerate() {
            let g = *slot.entry(uid).or_insert_with(|| {
                groups.push(Vec::new());
                groups.len() - 1
            });
            groups[g].push(row);
        }
        Self {
            groups,
            rows: uids.len(),
        }
    }

    /// The rows of each group.
    pub fn groups(&self) -> &[Vec<usize>] {
        &self.groups
    }

    /// Number of rows covered.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Fails when a group is smaller than 2 and singletons are errors.
    pub(super) fn check_sizes(&self, singletons: SingletonGroups) -> Result<()> {
        match (singletons, self.groups.iter().map(Vec::len).min()) {
            (_, Some(0)) => Err(CoreError::GroupTooSmall { group_size: 0 }),
            (SingletonGroups::Error, Some(1)) => Err(CoreError::GroupTooSmall { group_size: 1 }),
            _ => Ok(()),
        }
    }
}
