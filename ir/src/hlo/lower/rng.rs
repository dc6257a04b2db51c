//! `rng-bit-generator(state), algorithm=..` lowered to integer ops, as XLA's
//! `RngBitGeneratorExpander` expands it (`xla/service/rng_bit_generator_expander.cc` and the
//! generators of `xla/hlo/builder/lib/prng.cc`, REFERENCES.md): Threefry-2x32 (20 rounds) or
//! Philox-4x32 (10 rounds) over a counter built from iotas. The bits are then a pure function
//! of the state and each element's position, so a partitioned run draws exactly the bits the
//! reference does, and the same bits as XLA on CPU and GPU.
//!
//! Every intermediate is u32 or u64 (u64 only where its bit pattern is all that matters:
//! wrapping add/multiply, shifts, truncation); carries are found with u32 compares, which are
//! exact where a u64 compare of values of 2^63 or more would not be (the runtime stores u64 in
//! i64).

use crate::dtype::DType;
use crate::graph::ValueId;
use crate::op::{BinaryFn, CompareDir, Literal, Op};
use crate::types::TensorType;

use super::super::text::{HloType, Instruction};
use super::{Lowered, Lowering};

/// Threefry-2x32's rotation distances and key-schedule parity constant (Salmon et al. 2011).
const THREEFRY_ROTATIONS: [u64; 8] = [13, 15, 26, 6, 17, 29, 16, 24];
const THREEFRY_PARITY: u64 = 0x1BD1_1BDA;
/// Philox-4x32's round multipliers and Weyl key increments (Salmon et al. 2011).
const PHILOX_M: [u64; 2] = [0xD251_1F53, 0xCD9E_8D57];
const PHILOX_W: [u64; 2] = [0x9E37_79B9, 0xBB67_AE85];
/// Output elements at most: one rng-bit-generator becomes a few hundred nodes of this size.
const MAX_ELEMENTS: u64 = 1 << 26;

#[derive(Clone, Copy)]
enum Algorithm {
    ThreeFry,
    Philox,
}

/// Builds the expansion's nodes, named `BASE.rng.N`.
struct Gen<'a, 'm> {
    l: &'a mut Lowering<'m>,
    base: String,
}

impl Gen<'_, '_> {
    fn push(&mut self, op: Op, operands: Vec<ValueId>, ty: TensorType) -> Result<ValueId, String> {
        let name = self.l.fresh_name(&format!("{}.rng", self.base));
        self.l.push(&name, op, operands, ty)
    }

    fn ty(&self, v: ValueId) -> TensorType {
        self.l.graph.ty(v).clone()
    }

    fn constant(&mut self, dtype: DType, dims: &[u64], value: u64) -> Result<ValueId, String> {
        let value = Literal::Splat(value as f64);
        self.push(
            Op::Constant { value },
            vec![],
            TensorType::new(dtype, dims.to_vec()),
        )
    }

    /// `x OP c` for a constant `c` of `x`'s type.
    fn bin_c(&mut self, func: BinaryFn, x: ValueId, c: u64) -> Result<ValueId, String> {
        let t = self.ty(x);
        let c = self.constant(t.dtype, t.dims(), c)?;
        self.bin(func, x, c)
    }

    fn bin(&mut self, func: BinaryFn, x: ValueId, y: ValueId) -> Result<ValueId, String> {
        let t = self.ty(x);
        self.push(Op::Binary { func }, vec![x, y], t)
    }

    fn add(&mut self, x: ValueId, y: ValueId) -> Result<ValueId, String> {
        self.bin(BinaryFn::Add, x, y)
    }

    fn xor(&mut self, x: ValueId, y: ValueId) -> Result<ValueId, String> {
        self.bin(BinaryFn::Xor, x, y)
    }

    fn convert(&mut self, x: ValueId, dtype: DType) -> Result<ValueId, String> {
        let t = TensorType::new(dtype, self.ty(x).dims().to_vec());
        self.push(Op::Convert, vec![x], t)
    }

    fn reshape(&mut self, x: ValueId, dims: &[u64]) -> Result<ValueId, String> {
        let t = TensorType::new(self.ty(x).dtype, dims.to_vec());
        self.push(Op::Reshape, vec![x], t)
    }

    /// A scalar broadcast to `dims`.
    fn splat(&mut self, x: ValueId, dims: &[u64]) -> Result<ValueId, String> {
        let t = TensorType::new(self.ty(x).dtype, dims.to_vec());
        self.push(Op::Broadcast { dims: vec![] }, vec![x], t)
    }

    /// `x[start..limit]` along a rank-1 `x`, or along `dim` of any rank.
    fn slice(&mut self, x: ValueId, dim: usize, start: u64, limit: u64) -> Result<ValueId, String> {
        let t = self.ty(x);
        let mut lo = vec![0; t.rank()];
        let mut hi = t.dims().to_vec();
        lo[dim] = start;
        hi[dim] = limit;
        let mut dims = t.dims().to_vec();
        dims[dim] = limit - start;
        let op = Op::Slice {
            start: lo,
            limit: hi,
            stride: vec![1; t.rank()],
        };
        self.push(op, vec![x], TensorType::new(t.dtype, dims))
    }

    fn concat(&mut self, xs: Vec<ValueId>, dim: usize) -> Result<ValueId, String> {
        let t = self.ty(xs[0]);
        let mut dims = t.dims().to_vec();
        dims[dim] = xs.iter().map(|&x| self.l.graph.ty(x).dims()[dim]).sum();
        self.push(Op::Concatenate { dim }, xs, TensorType::new(t.dtype, dims))
    }

    /// Element `i` of a rank-1 value, as a scalar.
    fn element(&mut self, x: ValueId, i: u64) -> Result<ValueId, String> {
        let s = self.slice(x, 0, i, i + 1)?;
        self.reshape(s, &[])
    }

    /// A u64 value's low and high 32 bits (XLA's `Uint64ToUint32s`).
    fn halves(&mut self, x: ValueId) -> Result<[ValueId; 2], String> {
        let lo = self.convert(x, DType::U32)?;
        let hi = self.bin_c(BinaryFn::ShiftRightLogical, x, 32)?;
        Ok([lo, self.convert(hi, DType::U32)?])
    }

    /// `lo | hi << 32` as u64 (XLA's `Uint32sToUint64`).
    fn join(&mut self, lo: ValueId, hi: ValueId) -> Result<ValueId, String> {
        let lo = self.convert(lo, DType::U64)?;
        let hi = self.convert(hi, DType::U64)?;
        let hi = self.bin_c(BinaryFn::ShiftLeft, hi, 32)?;
        self.bin(BinaryFn::Or, lo, hi)
    }

    /// `(x + c, carry)` of u32s, the carry as a u32 0 or 1 (`x + c < x` unsigned).
    fn add_carry(&mut self, x: ValueId, c: ValueId) -> Result<(ValueId, ValueId), String> {
        let s = self.add(x, c)?;
        let t = self.ty(x);
        let lt = Op::Compare {
            dir: CompareDir::Lt,
        };
        let wrapped = self.push(
            lt,
            vec![s, x],
            TensorType::new(DType::Bool, t.dims().to_vec()),
        )?;
        Ok((s, self.convert(wrapped, DType::U32)?))
    }

    /// `(v << d) | (v >> (32 - d))` of u32s.
    fn rotl(&mut self, v: ValueId, d: u64) -> Result<ValueId, String> {
        let l = self.bin_c(BinaryFn::ShiftLeft, v, d)?;
        let r = self.bin_c(BinaryFn::ShiftRightLogical, v, 32 - d)?;
        self.bin(BinaryFn::Or, l, r)
    }

    /// Threefry-2x32 with 20 rounds of `x` under `key` (u32s of one shape).
    fn threefry(&mut self, x: [ValueId; 2], key: [ValueId; 2]) -> Result<[ValueId; 2], String> {
        let k2 = self.xor(key[0], key[1])?;
        let ks = [
            key[0],
            key[1],
            self.bin_c(BinaryFn::Xor, k2, THREEFRY_PARITY)?,
        ];
        let mut x = [self.add(x[0], ks[0])?, self.add(x[1], ks[1])?];
        for block in 0..5u64 {
            let rot = &THREEFRY_ROTATIONS[(block as usize % 2) * 4..][..4];
            for &r in rot {
                x[0] = self.add(x[0], x[1])?;
                let y = self.rotl(x[1], r)?;
                x[1] = self.xor(x[0], y)?;
            }
            // Key injection `block + 1`: ks[(b+1)%3], ks[(b+2)%3] + b + 1.
            let i = block as usize;
            x[0] = self.add(x[0], ks[(i + 1) % 3])?;
            let y = self.add(x[1], ks[(i + 2) % 3])?;
            x[1] = self.bin_c(BinaryFn::Add, y, block + 1)?;
        }
        Ok(x)
    }

    /// `(hi, lo)` of the 64-bit product of u32 `x` and the constant `k`.
    fn mul_hi_lo(&mut self, x: ValueId, k: u64) -> Result<(ValueId, ValueId), String> {
        let wide = self.convert(x, DType::U64)?;
        let p = self.bin_c(BinaryFn::Mul, wide, k)?;
        let [lo, hi] = self.halves(p)?;
        Ok((hi, lo))
    }

    /// Philox-4x32 with 10 rounds of `x` under `key` (u32s of one shape).
    fn philox(
        &mut self,
        mut x: [ValueId; 4],
        mut key: [ValueId; 2],
    ) -> Result<[ValueId; 4], String> {
        for round in 0..10 {
            let (hi0, lo0) = self.mul_hi_lo(x[0], PHILOX_M[0])?;
            let (hi1, lo1) = self.mul_hi_lo(x[2], PHILOX_M[1])?;
            let a = self.xor(hi1, x[1])?;
            let c = self.xor(hi0, x[3])?;
            x = [self.xor(a, key[0])?, lo1, self.xor(c, key[1])?, lo0];
            if round < 9 {
                key = [
                    self.bin_c(BinaryFn::Add, key[0], PHILOX_W[0])?,
                    self.bin_c(BinaryFn::Add, key[1], PHILOX_W[1])?,
                ];
            }
        }
        Ok(x)
    }
}

/// XLA's `SplitShapeIntoHalves`: the first even dim (else the largest) becomes
/// `[ceil(d/2), 1]`, the halves are concatenated on the new unit dim.
fn split_halves(dims: &[u64]) -> (Vec<u64>, usize) {
    if dims.is_empty() {
        return (vec![1], 0);
    }
    let split = dims.iter().position(|d| d % 2 == 0).unwrap_or_else(|| {
        // The first of the largest dims, as XLA's strict `>` scan picks.
        let max = dims.iter().copied().max().unwrap_or(0);
        dims.iter().position(|&d| d == max).unwrap_or(0)
    });
    let mut half = Vec::with_capacity(dims.len() + 1);
    for (i, &d) in dims.iter().enumerate() {
        if i == split {
            half.extend([d.div_ceil(2), 1]);
        } else {
            half.push(d);
        }
    }
    (half, split)
}

impl Lowering<'_> {
    /// `rng-bit-generator(state), algorithm=rng_default|rng_three_fry|rng_philox`:
    /// `(new state, bits)` (`NAME.0`, `NAME.1`). `rng_default` is read as XLA's CPU and GPU
    /// default, Philox (TPUs have a generator of their own).
    pub(super) fn rng_bit_generator(
        &mut self,
        inst: &Instruction,
        state: ValueId,
    ) -> Result<Lowered, String> {
        let alg = match inst.attr("algorithm").map(str::trim) {
            None | Some("rng_default") | Some("rng_philox") => Algorithm::Philox,
            Some("rng_three_fry") => Algorithm::ThreeFry,
            Some(a) => {
                return Err(format!(
                    "unknown algorithm `{a}` (rng_default, rng_three_fry or rng_philox)"
                ))
            }
        };
        let Some(HloType::Tuple(tys)) = &inst.ty else {
            return Err("rng-bit-generator must have a (state, bits) tuple type".into());
        };
        let [st, bt] = &tys[..] else {
            return Err("rng-bit-generator must have a (state, bits) tuple type".into());
        };
        let (st, bt) = (Self::tensor_type(st)?, Self::tensor_type(bt)?);
        let state_ty = self.graph.ty(state).clone();
        let n_state = match state_ty.dims() {
            [n] if state_ty.dtype == DType::U64 => *n,
            _ => {
                return Err(format!(
                    "the state must be u64[2] (or u64[3] for Philox), got {state_ty}"
                ))
            }
        };
        let ok_len = match alg {
            Algorithm::ThreeFry => n_state == 2,
            Algorithm::Philox => n_state == 2 || n_state == 3,
        };
        if !ok_len || st != state_ty {
            return Err(format!(
                "state {state_ty} and result state {st}: the state must be u64[2] (or u64[3] for Philox) and keep its type"
            ));
        }
        if !matches!(bt.dtype, DType::U32 | DType::U64) {
            return Err(format!("bits of {bt}: only u32 and u64 bits are supported"));
        }
        let n = bt.shape.elements();
        if n == 0 || n > MAX_ELEMENTS {
            return Err(format!(
                "{bt} has {n} elements; 1 to {MAX_ELEMENTS} are supported"
            ));
        }
        let base = self.node_name(inst);
        let mut g = Gen {
            l: self,
            base: base.clone(),
        };
        let key = g.element(state, 0)?;
        let (new_state, bits) = match alg {
            Algorithm::ThreeFry => threefry_bits(&mut g, state, key, &bt)?,
            Algorithm::Philox => philox_bits(&mut g, state, key, &bt, n_state)?,
        };
        let key1 = g.reshape(key, &[1])?;
        let new_state = g.concat(vec![key1, new_state], 0)?;
        let mut out = Vec::new();
        for (k, (v, ty)) in [(new_state, st), (bits, bt)].into_iter().enumerate() {
            let name = self.fresh_name(&format!("{base}.{k}"));
            out.push(Lowered::Node(self.push(&name, Op::Copy, vec![v], ty)?));
        }
        Ok(Lowered::Tuple(out))
    }
}

/// XLA's `GetThreeFryInputsAndUpdatedState`: each element's counter `state[1] + its row-major
/// position over the dims of 2 or more`, split into u32 halves; and the advanced counter.
fn threefry_counter(
    g: &mut Gen,
    state: ValueId,
    dims: &[u64],
) -> Result<([ValueId; 2], ValueId), String> {
    let s1 = g.slice(state, 0, 1, 2)?;
    let s = g.reshape(s1, &[])?;
    let mut c = g.splat(s, dims)?;
    let mut stride = 1u64;
    for (i, &d) in dims.iter().enumerate().rev() {
        if d < 2 {
            continue;
        }
        let iota = g.push(
            Op::Iota { dim: i },
            vec![],
            TensorType::new(DType::U64, dims.to_vec()),
        )?;
        let off = g.bin_c(BinaryFn::Mul, iota, stride)?;
        c = g.add(c, off)?;
        stride *= d;
    }
    let advanced = g.bin_c(BinaryFn::Add, s1, dims.iter().product())?;
    Ok((g.halves(c)?, advanced))
}

fn threefry_bits(
    g: &mut Gen,
    state: ValueId,
    key: ValueId,
    bt: &TensorType,
) -> Result<(ValueId, ValueId), String> {
    let dims = bt.dims().to_vec();
    let [k0, k1] = g.halves(key)?;
    if bt.dtype == DType::U64 {
        let (x, advanced) = threefry_counter(g, state, &dims)?;
        let key = [g.splat(k0, &dims)?, g.splat(k1, &dims)?];
        let [lo, hi] = g.threefry(x, key)?;
        return Ok((advanced, g.join(lo, hi)?));
    }
    let (half, split) = split_halves(&dims);
    let (x, advanced) = threefry_counter(g, state, &half)?;
    let key = [g.splat(k0, &half)?, g.splat(k1, &half)?];
    let [a, b] = g.threefry(x, key)?;
    if dims.is_empty() {
        return Ok((advanced, g.reshape(a, &[])?));
    }
    // XLA's `CombineShapePair`: the halves side by side on the unit dim, odd sizes trimmed.
    let both = g.concat(vec![a, b], split + 1)?;
    let mut even = dims.clone();
    even[split] = dims[split].div_ceil(2) * 2;
    let mut bits = g.reshape(both, &even)?;
    if even[split] != dims[split] {
        bits = g.slice(bits, split, 0, dims[split])?;
    }
    Ok((advanced, bits))
}

/// XLA's `PhiloxBitGenerator`: the state's 128-bit counter (`state[1..3]`, or `state[1]` then
/// `state[0]` for a 2-word state) plus `0..n/4`, through Philox under the key `state[0]`; the
/// four words of each counter are consecutive outputs.
fn philox_bits(
    g: &mut Gen,
    state: ValueId,
    key: ValueId,
    bt: &TensorType,
    n_state: u64,
) -> Result<(ValueId, ValueId), String> {
    let n = bt.shape.elements();
    let words = if bt.dtype == DType::U64 { 2 * n } else { n };
    let blocks = words.div_ceil(4);
    let (low, high) = if n_state >= 3 {
        (g.element(state, 1)?, g.element(state, 2)?)
    } else {
        (g.element(state, 1)?, g.element(state, 0)?)
    };
    let [s0, s1] = g.halves(low)?;
    let [s2, s3] = g.halves(high)?;
    let [k0, k1] = g.halves(key)?;
    // The counters: the 128-bit state plus an iota, carried through the u32 words.
    let b = [blocks];
    let iota = g.push(
        Op::Iota { dim: 0 },
        vec![],
        TensorType::new(DType::U32, b.to_vec()),
    )?;
    let mut x = [iota; 4];
    let mut carry = iota;
    for (w, &s) in [s0, s1, s2, s3].iter().enumerate() {
        let s = g.splat(s, &b)?;
        let (sum, c) = g.add_carry(s, carry)?;
        x[w] = sum;
        carry = c;
    }
    let key = [g.splat(k0, &b)?, g.splat(k1, &b)?];
    let out = g.philox(x, key)?;
    // The state advanced by `blocks`: the low word always, the high one too for a 3-word state.
    let inc = g.constant(DType::U32, &[], blocks)?;
    let (t0, c0) = g.add_carry(s0, inc)?;
    let (t1, c1) = g.add_carry(s1, c0)?;
    let low = g.join(t0, t1)?;
    let low = g.reshape(low, &[1])?;
    let advanced = if n_state >= 3 {
        let (t2, c2) = g.add_carry(s2, c1)?;
        let t3 = g.add(s3, c2)?;
        let high = g.join(t2, t3)?;
        let high = g.reshape(high, &[1])?;
        g.concat(vec![low, high], 0)?
    } else {
        low
    };
    let lanes: Vec<ValueId> = if bt.dtype == DType::U64 {
        vec![g.join(out[0], out[1])?, g.join(out[2], out[3])?]
    } else {
        out.to_vec()
    };
    let k = lanes.len() as u64;
    let cols = lanes
        .into_iter()
        .map(|l| g.reshape(l, &[blocks, 1]))
        .collect::<Result<Vec<_>, _>>()?;
    let all = g.concat(cols, 1)?;
    let flat = g.reshape(all, &[blocks * k])?;
    let flat = if blocks * k != n {
        g.slice(flat, 0, 0, n)?
    } else {
        flat
    };
    Ok((advanced, g.reshape(flat, bt.dims())?))
}

impl Lowering<'_> {
    /// `bitcast-convert(x)`: of one width, the op; between 32- and 64-bit integers (jax's
    /// `u32[.., 2]` keys to rng-bit-generator's `u64[..]` state and back), the words joined or
    /// split little-endian (element 0 the low word), as XLA's bitcast reads memory.
    pub(super) fn bitcast_convert(
        &mut self,
        inst: &Instruction,
        ops: &[ValueId],
        ty: TensorType,
    ) -> Result<Lowered, String> {
        let [x] = ops[..] else {
            return Err("bitcast-convert takes one operand".into());
        };
        let name = self.node_name(inst);
        let xt = self.graph.ty(x).clone();
        let widths = (xt.dtype.int_bits(), ty.dtype.int_bits());
        let unsigned = |d: DType| {
            if d.int_bits() == Some(64) {
                DType::U64
            } else {
                DType::U32
            }
        };
        let mut g = Gen {
            l: self,
            base: name.clone(),
        };
        let out = match widths {
            (Some(32), Some(64)) => {
                let (lead, last) = xt.dims().split_at(xt.rank().saturating_sub(1));
                if last != [2] || lead != ty.dims() {
                    return Err(format!(
                        "bitcast-convert {xt} to {ty}: needs a last dim of 2 more"
                    ));
                }
                let x = g.convert(x, DType::U32)?;
                let d = xt.rank() - 1;
                let lo = g.slice(x, d, 0, 1)?;
                let lo = g.reshape(lo, lead)?;
                let hi = g.slice(x, d, 1, 2)?;
                let hi = g.reshape(hi, lead)?;
                g.join(lo, hi)?
            }
            (Some(64), Some(32)) => {
                let mut dims = xt.dims().to_vec();
                dims.push(2);
                if dims != ty.dims() {
                    return Err(format!(
                        "bitcast-convert {xt} to {ty}: needs a last dim of 2 more"
                    ));
                }
                let x = g.convert(x, DType::U64)?;
                let [lo, hi] = g.halves(x)?;
                dims[xt.rank()] = 1;
                let lo = g.reshape(lo, &dims)?;
                let hi = g.reshape(hi, &dims)?;
                g.concat(vec![lo, hi], xt.rank())?
            }
            _ => {
                return self
                    .push(&name, Op::BitcastConvert, vec![x], ty)
                    .map(Lowered::Node)
            }
        };
        // The words are unsigned; a signed result reads the same bits.
        let op = if unsigned(ty.dtype) == ty.dtype {
            Op::Copy
        } else {
            Op::Convert
        };
        self.push(&name, op, vec![out], ty).map(Lowered::Node)
    }
}
