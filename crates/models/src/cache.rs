//! The key/value cache for prefill and incremental decoding, passed explicitly so one model
//! can serve many streams.

use burn::tensor::Tensor;

/// Keys and values of one layer, after RoPE and before the grouped-query repeat.
#[derive(Debug, Clone)]
pub(crate) struct LayerKv {
    /// `[batch, kv_heads, cached, head_dim]`
    pub k: Tensor<4>,
    /// `[batch, kv_heads, cached, head_dim]`
    pub v: Tensor<4>,
}

/// Cached keys and values for every layer of one batch of sequences.
///
/// Create an empty cache with [`KvCache::new`], pass it to
/// [`CausalLm::forward_cached`](crate::CausalLm::forward_cached) for the prompt (prefill),
/// then once per generated token. The attention mask given to each call covers the cached
/// and the new positions.
#[derive(Debug, Clone, Default)]
pub struct KvCache {
    pub(crate) layers: Vec<Option<LayerKv>>,
    pub(crate) len: usize,
}

impl KvCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of cached positions.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is cached yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Append `k`, `v` (`[batch, kv_heads, new, head_dim]`) for `layer` and return the full
    /// cached keys and values.
    pub(crate) fn append(
        &mut self,
        layer: usize,
        k: Tensor<4>,
        v: Tensor<4>,
    ) -> (Tensor<4>, Tensor<4>) {
        if self.layers.len() <= layer {
            self.layers.resize(layer + 1, None);
        }
        let entry = match self.layers[layer].take() {
            None => LayerKv { k, v },
            Some(old) => LayerKv {
                k: Tensor::cat(vec![old.k, k], 2),
                v: Tensor::cat(vec![old.v, v], 2),
            },
        };
        let out = (entry.k.clone(), entry.v.clone());
        self.layers[layer] = Some(entry);
        out
    }
}
