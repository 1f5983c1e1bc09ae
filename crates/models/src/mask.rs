//! Position ids and the attention mask derived from a padding mask.
//!
//! Positions follow transformers' generate: `cumsum(mask) - 1`, with padding positions set
//! to 1. A query may attend to a key when the key is not padding and not in the future. A
//! padding query attends to itself only, so that no softmax row is empty (its output is
//! never used, but an all-masked row would be NaN and poison gradients).

use burn::tensor::{Bool, Device, Int, Tensor, TensorData};

/// Position ids and the boolean "blocked" mask for one forward call.
pub(crate) struct Masks {
    /// `[batch, new]`
    pub positions: Tensor<2, Int>,
    /// `[batch, 1, new, past + new]`; `true` where attention is blocked.
    pub blocked: Tensor<4, Bool>,
}

/// Read a `[batch, total]` padding mask back to the host as booleans.
pub(crate) fn host_mask(attention_mask: Tensor<2, Int>) -> (usize, usize, Vec<bool>) {
    let [batch, total] = attention_mask.dims();
    let data = attention_mask.into_data().convert::<i64>();
    let values: Vec<bool> = data
        .as_slice::<i64>()
        .expect("converted to i64")
        .iter()
        .map(|&x| x != 0)
        .collect();
    (batch, total, values)
}

/// Build the masks for `new` query positions following `past` cached ones.
pub(crate) fn build(
    mask: &[bool],
    batch: usize,
    total: usize,
    past: usize,
    device: &Device,
) -> Masks {
    let new = total - past;
    let mut positions = Vec::with_capacity(batch * new);
    let mut blocked = Vec::with_capacity(batch * new * total);
    for b in 0..batch {
        let row = &mask[b * total..(b + 1) * total];
        let mut count = 0i64;
        let mut pos = Vec::with_capacity(total);
        for &m in row {
            count += m as i64;
            pos.push(if m { count - 1 } else { 1 });
        }
        positions.extend_from_slice(&pos[past..]);
        for i in 0..new {
            let q = past + i;
            for (k, &key_valid) in row.iter().enumerate() {
                let allowed = (k <= q && key_valid && row[q]) || k == q;
                blocked.push(!allowed);
            }
        }
    }
    Masks {
        positions: Tensor::from_data(TensorData::new(positions, [batch, new]), device),
        blocked: Tensor::from_data(TensorData::new(blocked, [batch, 1, new, total]), device),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn left_padding_positions_and_mask() {
        let device = Device::flex();
        // row 0: [pad, a, b]; row 1: [a, b, c]
        let mask = [false, true, true, true, true, true];
        let m = build(&mask, 2, 3, 0, &device);
        let pos = m.positions.into_data().convert::<i64>();
        assert_eq!(pos.as_slice::<i64>().unwrap(), &[1, 0, 1, 0, 1, 2]);
        let blocked = m.blocked.into_data();
        let b = blocked.as_slice::<bool>().unwrap();
        // row 0, query 0 (padding) sees only itself.
        assert_eq!(&b[0..3], &[false, true, true]);
        // row 0, query 2 sees keys 1 and 2 but not the padding key 0.
        assert_eq!(&b[6..9], &[true, false, false]);
        // row 1 is plain causal.
        assert_eq!(
            &b[9..18],
            &[false, true, true, false, false, true, false, false, false]
        );
    }

    #[test]
    fn decode_step_uses_past_offset() {
        let device = Device::flex();
        let mask = [false, true, true, true];
        let m = build(&mask, 1, 4, 3, &device);
        let pos = m.positions.into_data().convert::<i64>();
        assert_eq!(pos.as_slice::<i64>().unwrap(), &[2]);
        let b = m.blocked.into_data();
        assert_eq!(b.as_slice::<bool>().unwrap(), &[true, false, false, false]);
    }
}
