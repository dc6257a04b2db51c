//! Deterministic random inputs for a graph, following each input's `Init` hint.

use shardc_ir::{DType, Graph, Init, Op, ValueId};

use crate::tensor::{usize_dims, Tensor};

/// SplitMix64 (Steele, Lea & Flood 2014): a small, fast generator with good statistics, enough
/// for test data; seeding each input's stream separately keeps inputs independent of each other.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)` with 53 random bits.
    fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Standard normal by Box-Muller.
    fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.uniform(); // in (0, 1], so the log is finite
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

/// The index range `[0, n)` for an integer input without a hint: the size of the axis of the
/// smallest gather/scatter_add that indexes with it (for the general forms, the starts at which
/// every slice or window fits), else 2.
fn index_range(g: &Graph, v: ValueId, users: &[ValueId]) -> u64 {
    users
        .iter()
        .filter_map(|&u| {
            let node = g.node(u);
            match &node.op {
                &Op::Gather { axis } | &Op::ScatterAdd { axis }
                    if node.operands.get(1) == Some(&v) =>
                {
                    g.ty(node.operands[0]).dims().get(axis).copied()
                }
                // The general forms: every start that fits its slice or window.
                Op::GeneralGather(d) if node.operands.get(1) == Some(&v) => {
                    let x = g.ty(node.operands[0]).dims();
                    d.start_index_map
                        .iter()
                        .filter_map(|&k| x.get(k)?.checked_sub(*d.slice_sizes.get(k)?))
                        .map(|n| n + 1)
                        .min()
                }
                Op::GeneralScatter { dims, .. } if node.operands.get(1) == Some(&v) => {
                    let ty = |i: usize| g.ty(node.operands[i]).dims();
                    let geo = dims.geometry(ty(0), ty(1), ty(2)).ok()?;
                    dims.scatter_dims_to_operand_dims
                        .iter()
                        .filter_map(|&k| ty(0).get(k)?.checked_sub(geo.window_sizes[k]))
                        .map(|n| n + 1)
                        .min()
                }
                _ => None,
            }
        })
        .min()
        .unwrap_or(2)
        .max(1)
}

/// Random tensors for `g`'s inputs, in the order of `g.inputs()`, the same for the same seed.
/// Floats without a hint are Normal(0, 1); integers are uniform in `[0, n)` (see `Init::Index`;
/// without a hint `n` is the indexed axis of the gather/scatter_add using them, else 2); bools
/// are fair coin flips. An input too large to store gets a scalar placeholder, which the
/// executor then rejects with an error naming the input.
pub fn random_inputs(g: &Graph, seed: u64) -> Vec<Tensor> {
    let users = g.users();
    g.inputs()
        .enumerate()
        .map(|(k, v)| {
            let node = g.node(v);
            let mut rng = SplitMix64(seed ^ (k as u64 + 1).wrapping_mul(0xD1B5_4A32_D192_ED03));
            // Burn one value so nearby seeds decorrelate.
            rng.next_u64();
            let init = match &node.op {
                Op::Input { init: Some(i) } => Some(i.clone()),
                _ => None,
            };
            let dtype = node.ty.dtype;
            let init = init.unwrap_or(match dtype {
                d if d.is_float() => Init::Normal { std: 1.0 },
                d if d.is_int() => Init::Index {
                    high: index_range(g, v, &users[v.index()]),
                },
                _ => Init::Uniform {
                    low: 0.0,
                    high: 2.0,
                },
            });
            let dims = usize_dims(&node.ty).unwrap_or_default();
            Tensor::from_fn(dtype, &dims, |_| match init {
                Init::Normal { std } => std * rng.normal(),
                Init::Uniform { low, high } if dtype == DType::Bool || dtype.is_int() => {
                    (low + (high - low) * rng.uniform()).floor()
                }
                Init::Uniform { low, high } => low + (high - low) * rng.uniform(),
                Init::Fill { value } => value,
                Init::Index { high } => (rng.next_u64() % high.max(1)) as f64,
            })
        })
        .collect()
}
