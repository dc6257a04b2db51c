//! Layout and source operators: reshapes, transposes, gathers, slices, concatenation, splits,
//! expansion, tiling, triangular masks, and the operators whose value is known at import time
//! (`Shape`, `Size`, `Constant`, `ConstantOfShape`, `Range`).

use super::build::{norm_axis, Ctx, Inputs, Val};
use super::fold::SliceParams;
use super::host::{broadcast_shape, Host};
use super::tensor::decode;
use crate::dtype::DType;
use crate::error::Result;
use crate::graph::ValueId;
use crate::op::{BinaryFn, CompareDir, Op};
use crate::types::TensorType;

pub(crate) fn identity(cx: &mut Ctx, x: &Inputs) -> Result<Vec<Val>> {
    let v = x.get(0)?.clone();
    let mut out = vec![v.clone()];
    // Dropout in inference: the input, and a mask of all true.
    if x.attrs.op_type() == "Dropout" && x.attrs.num_outputs() > 1 {
        let ty = cx.ty(&v);
        out.push(Val::Node(cx.splat(DType::Bool, ty.dims(), 1.0)?));
    }
    Ok(out)
}

/// The result dims of `Reshape`, `Flatten`, `Squeeze` and `Unsqueeze` on an input of `dims`.
pub(crate) fn reshaped_dims(op: &str, x: &Inputs, dims: &[u64]) -> Result<Vec<u64>> {
    let rank = dims.len();
    match op {
        "Reshape" => {
            let shape = x.host_ints(1)?;
            let allow_zero = x.attrs.int("allowzero", 0) == 1;
            let total: u64 = dims.iter().product();
            let mut out = Vec::with_capacity(shape.len());
            let mut infer = None;
            for (i, &d) in shape.iter().enumerate() {
                out.push(match d {
                    0 if !allow_zero => *dims.get(i).ok_or_else(|| {
                        x.attrs.err(format!(
                            "shape entry {i} is 0 (copy), but the input has rank {rank}"
                        ))
                    })?,
                    -1 if infer.is_none() => {
                        infer = Some(i);
                        1
                    }
                    d if d >= 0 => d as u64,
                    _ => {
                        return Err(x
                            .attrs
                            .err(format!("shape {shape:?} is not a valid target shape")))
                    }
                });
            }
            if let Some(i) = infer {
                let known: u64 = out.iter().product();
                if known == 0 || total % known != 0 {
                    return Err(x.attrs.err(format!("cannot reshape {dims:?} to {shape:?}")));
                }
                out[i] = total / known;
            }
            if out.iter().product::<u64>() != total {
                return Err(x.attrs.err(format!(
                    "cannot reshape {dims:?} ({total} elements) to {out:?}"
                )));
            }
            Ok(out)
        }
        "Flatten" => {
            let axis = x.attrs.int("axis", 1);
            let axis = if axis < 0 { axis + rank as i64 } else { axis };
            if axis < 0 || axis > rank as i64 {
                return Err(x
                    .attrs
                    .err(format!("axis {axis} is out of range for rank {rank}")));
            }
            let a = axis as usize;
            Ok(vec![dims[..a].iter().product(), dims[a..].iter().product()])
        }
        "Squeeze" => {
            let axes = x.ints_input_or_attr(1, "axes")?;
            let axes: Vec<usize> = match axes {
                Some(a) => a
                    .iter()
                    .map(|&a| norm_axis(&x.attrs, a, rank))
                    .collect::<Result<_>>()?,
                None => (0..rank).filter(|&d| dims[d] == 1).collect(),
            };
            for &a in &axes {
                if dims[a] != 1 {
                    return Err(x
                        .attrs
                        .err(format!("cannot squeeze dim {a} of size {}", dims[a])));
                }
            }
            Ok((0..rank)
                .filter(|d| !axes.contains(d))
                .map(|d| dims[d])
                .collect())
        }
        _ => {
            let axes = x
                .ints_input_or_attr(1, "axes")?
                .ok_or_else(|| x.attrs.err("needs axes"))?;
            let out_rank = rank + axes.len();
            let axes: Vec<usize> = axes
                .iter()
                .map(|&a| norm_axis(&x.attrs, a, out_rank))
                .collect::<Result<_>>()?;
            let mut it = dims.iter();
            Ok((0..out_rank)
                .map(|d| {
                    if axes.contains(&d) {
                        1
                    } else {
                        *it.next().unwrap_or(&1)
                    }
                })
                .collect())
        }
    }
}

pub(crate) fn reshape_like(cx: &mut Ctx, op: &str, x: &Inputs) -> Result<ValueId> {
    let v = cx.node(x.get(0)?)?;
    let dims = reshaped_dims(op, x, cx.g.ty(v).dims())?;
    cx.reshape(v, &dims)
}

pub(crate) fn transpose(cx: &mut Ctx, x: &Inputs) -> Result<ValueId> {
    let v = cx.node(x.get(0)?)?;
    let rank = cx.g.ty(v).rank();
    let perm: Vec<usize> = match x.attrs.ints("perm") {
        Some(p) => p
            .iter()
            .map(|&a| norm_axis(&x.attrs, a, rank))
            .collect::<Result<_>>()?,
        None => (0..rank).rev().collect(),
    };
    if perm.iter().enumerate().all(|(i, &p)| i == p) {
        return Ok(v);
    }
    cx.push("transpose", Op::Transpose { perm }, vec![v], None)
}

pub(crate) fn gather(cx: &mut Ctx, x: &Inputs) -> Result<ValueId> {
    let data = cx.node(x.get(0)?)?;
    let ty = cx.g.ty(data).clone();
    let axis = norm_axis(&x.attrs, x.attrs.int("axis", 0), ty.rank())?;
    let n = ty.dims()[axis] as f64;
    let idx = match x.get(1)? {
        // Negative indices count from the end; known ones are resolved here.
        Val::Host(h) => {
            let data: Vec<f64> = h
                .data
                .iter()
                .map(|&i| if i < 0.0 { i + n } else { i })
                .collect();
            cx.node(&Val::host(Host::new(h.dtype, h.dims.clone(), data)))?
        }
        v => {
            let i = cx.node(v)?;
            let it = cx.g.ty(i).clone();
            let zero = cx.splat(it.dtype, it.dims(), 0.0)?;
            let neg = cx.push(
                "negative",
                Op::Compare {
                    dir: CompareDir::Lt,
                },
                vec![i, zero],
                None,
            )?;
            let wrapped = cx.binary_scalar(BinaryFn::Add, i, n)?;
            cx.push("index", Op::Select, vec![neg, wrapped, i], None)?
        }
    };
    cx.push("gather", Op::Gather { axis }, vec![data, idx], None)
}

/// The flat positions `GatherElements` reads: `out[.., j, ..] = data[.., idx[.., j, ..], ..]`
/// along `axis`, as row-major offsets into `data` of `dims`.
pub(crate) fn gather_elements_offsets(x: &Inputs, dims: &[u64], idx: &Host) -> Result<Vec<f64>> {
    let axis = norm_axis(&x.attrs, x.attrs.int("axis", 0), dims.len())?;
    if idx.dims.len() != dims.len() {
        return Err(x.attrs.err(format!(
            "indices {:?} must have the data's rank {}",
            idx.dims,
            dims.len()
        )));
    }
    let st = super::host::strides(dims);
    let ist = super::host::strides(&idx.dims);
    let n = dims[axis] as i64;
    let mut out = Vec::with_capacity(idx.data.len());
    for (k, &i) in idx.data.iter().enumerate() {
        let i = i as i64;
        let i = if i < 0 { i + n } else { i };
        if i < 0 || i >= n {
            return Err(x
                .attrs
                .err(format!("index {i} is out of range for a dim of {n}")));
        }
        let mut off = 0u64;
        for d in 0..dims.len() {
            let c = (k as u64 / ist[d]) % idx.dims[d];
            off += if d == axis { i as u64 } else { c } * st[d];
        }
        out.push(off as f64);
    }
    Ok(out)
}

/// `GatherElements` with known indices: a gather of the flattened data at the flat positions.
pub(crate) fn gather_elements(cx: &mut Ctx, x: &Inputs) -> Result<ValueId> {
    let data = cx.node(x.get(0)?)?;
    let ty = cx.g.ty(data).clone();
    let idx = x.host(1)?;
    let offsets = gather_elements_offsets(x, ty.dims(), idx)?;
    let flat = cx.reshape(data, &[ty.shape.elements()])?;
    let i = cx.node(&Val::host(Host::new(DType::I64, idx.dims.clone(), offsets)))?;
    cx.push(
        "gather_elements",
        Op::Gather { axis: 0 },
        vec![flat, i],
        None,
    )
}

pub(crate) fn concat(cx: &mut Ctx, x: &Inputs) -> Result<ValueId> {
    let mut parts = Vec::new();
    for v in x.vals.iter().flatten() {
        parts.push(cx.node(v)?);
    }
    let rank = parts.first().map_or(0, |&p| cx.g.ty(p).rank());
    let dim = norm_axis(&x.attrs, x.attrs.int("axis", 0), rank)?;
    if parts.len() == 1 {
        return Ok(parts[0]);
    }
    cx.push("concat", Op::Concatenate { dim }, parts, None)
}

/// `Slice`'s starts, ends, axes and steps resolved against `dims` (clamped as ONNX says).
pub(crate) fn slice_params(x: &Inputs, dims: &[u64]) -> Result<SliceParams> {
    let rank = dims.len();
    let starts = x.host_ints(1)?;
    let ends = x.host_ints(2)?;
    let axes: Vec<usize> = match x.opt(3) {
        Some(_) => x
            .host_ints(3)?
            .iter()
            .map(|&a| norm_axis(&x.attrs, a, rank))
            .collect::<Result<_>>()?,
        None => (0..starts.len()).collect(),
    };
    let steps = match x.opt(4) {
        Some(_) => x.host_ints(4)?,
        None => vec![1; starts.len()],
    };
    if ends.len() != starts.len() || axes.len() != starts.len() || steps.len() != starts.len() {
        return Err(x
            .attrs
            .err("starts, ends, axes and steps must have the same length"));
    }
    let mut out: SliceParams = dims.iter().map(|&d| (0, 1, d)).collect();
    for k in 0..starts.len() {
        let (a, step) = (axes[k], steps[k]);
        let n = dims[a] as i64;
        if step == 0 {
            return Err(x.attrs.err("a step of 0"));
        }
        let norm = |v: i64| if v < 0 { v.saturating_add(n) } else { v };
        let (s, e) = (norm(starts[k]), norm(ends[k]));
        let (s, e, count) = if step > 0 {
            let (s, e) = (s.clamp(0, n), e.clamp(0, n));
            (s, e, if e > s { (e - s + step - 1) / step } else { 0 })
        } else {
            let (s, e) = (s.clamp(0, n - 1), e.clamp(-1, n - 1));
            (s, e, if s > e { (s - e - step - 1) / -step } else { 0 })
        };
        let _ = e;
        out[a] = (s, step, count as u64);
    }
    Ok(out)
}

pub(crate) fn slice(cx: &mut Ctx, x: &Inputs) -> Result<ValueId> {
    let mut v = cx.node(x.get(0)?)?;
    let dims = cx.g.ty(v).dims().to_vec();
    let sl = slice_params(x, &dims)?;
    // A negative step reads the reversed dim forwards.
    let rev: Vec<usize> = (0..dims.len()).filter(|&d| sl[d].1 < 0).collect();
    if !rev.is_empty() {
        v = cx.push("reverse", Op::Reverse { dims: rev }, vec![v], None)?;
    }
    let mut start = Vec::new();
    let mut limit = Vec::new();
    let mut stride = Vec::new();
    for (d, &(s, step, count)) in sl.iter().enumerate() {
        let (s, step) = if step < 0 {
            (dims[d] as i64 - 1 - s, -step)
        } else {
            (s, step)
        };
        let s = if count == 0 { 0 } else { s as u64 };
        start.push(s);
        limit.push(if count == 0 {
            0
        } else {
            s + (count - 1) * step as u64 + 1
        });
        stride.push(step as u64);
    }
    if sl
        .iter()
        .zip(&dims)
        .all(|(p, &d)| p.0 == 0 && p.1 == 1 && p.2 == d)
    {
        return Ok(v);
    }
    cx.push(
        "slice",
        Op::Slice {
            start,
            limit,
            stride,
        },
        vec![v],
        None,
    )
}

pub(crate) fn split(cx: &mut Ctx, x: &Inputs) -> Result<Vec<Val>> {
    let v = cx.node(x.get(0)?)?;
    let dims = cx.g.ty(v).dims().to_vec();
    let axis = norm_axis(&x.attrs, x.attrs.int("axis", 0), dims.len())?;
    let n = dims[axis];
    let sizes: Vec<u64> = match x.ints_input_or_attr(1, "split")? {
        Some(s) => s.iter().map(|&s| s.max(0) as u64).collect(),
        None => {
            let parts = x.attrs.int("num_outputs", 0).max(0) as u64;
            let parts = if parts == 0 {
                x.attrs.num_outputs() as u64
            } else {
                parts
            };
            if parts == 0 {
                return Err(x.attrs.err("cannot tell how many parts to split into"));
            }
            let each = n.div_ceil(parts);
            (0..parts)
                .map(|k| each.min(n.saturating_sub(k * each)))
                .collect()
        }
    };
    if sizes.iter().sum::<u64>() != n {
        return Err(x
            .attrs
            .err(format!("split sizes {sizes:?} do not add up to {n}")));
    }
    let mut out = Vec::new();
    let mut at = 0;
    for s in sizes {
        let mut start = vec![0; dims.len()];
        let mut limit = dims.clone();
        start[axis] = at;
        limit[axis] = at + s;
        let stride = vec![1; dims.len()];
        out.push(Val::Node(cx.push(
            "split",
            Op::Slice {
                start,
                limit,
                stride,
            },
            vec![v],
            None,
        )?));
        at += s;
    }
    Ok(out)
}

pub(crate) fn expand(cx: &mut Ctx, x: &Inputs) -> Result<ValueId> {
    let v = cx.node(x.get(0)?)?;
    let shape: Vec<u64> = x.host_ints(1)?.iter().map(|&d| d.max(0) as u64).collect();
    let ty = cx.g.ty(v).clone();
    let dims = broadcast_shape(ty.dims(), &shape)
        .ok_or_else(|| x.attrs.err(format!("cannot expand {ty} to {shape:?}")))?;
    cx.broadcast_to(v, &dims)
}

/// `Tile`: each dim `d` of size `n` repeated `r` times, as a broadcast of `[.., 1, n, ..]` to
/// `[.., r, n, ..]` and a reshape merging the pair.
pub(crate) fn tile(cx: &mut Ctx, x: &Inputs) -> Result<ValueId> {
    let v = cx.node(x.get(0)?)?;
    let ty = cx.g.ty(v).clone();
    let reps = x.host_ints(1)?;
    if reps.len() != ty.rank() || reps.iter().any(|&r| r < 0) {
        return Err(x.attrs.err(format!(
            "repeats {reps:?} must be {} non-negative numbers",
            ty.rank()
        )));
    }
    let pairs: Vec<u64> = ty.dims().iter().flat_map(|&d| [1, d]).collect();
    let wide: Vec<u64> = ty
        .dims()
        .iter()
        .zip(&reps)
        .flat_map(|(&d, &r)| [r as u64, d])
        .collect();
    let out: Vec<u64> = ty
        .dims()
        .iter()
        .zip(&reps)
        .map(|(&d, &r)| d * r as u64)
        .collect();
    let r = cx.reshape(v, &pairs)?;
    let b = cx.broadcast_to(r, &wide)?;
    cx.reshape(b, &out)
}

/// `Trilu`: keeps the elements on and above (`upper`) or below the `k`-th diagonal of the last
/// two dims, zeros elsewhere.
pub(crate) fn trilu(cx: &mut Ctx, x: &Inputs) -> Result<ValueId> {
    let v = cx.node(x.get(0)?)?;
    let ty = cx.g.ty(v).clone();
    let r = ty.rank();
    if r < 2 {
        return Err(x.attrs.err(format!("needs rank >= 2, got {ty}")));
    }
    let k = match x.opt(1) {
        Some(_) => x.host_ints(1)?.first().copied().unwrap_or(0),
        None => 0,
    };
    let ity = TensorType::new(DType::I64, ty.dims().to_vec());
    let row = cx.push("row", Op::Iota { dim: r - 2 }, vec![], Some(ity.clone()))?;
    let col = cx.push("col", Op::Iota { dim: r - 1 }, vec![], Some(ity))?;
    let diff = cx.push(
        "diagonal",
        Op::Binary {
            func: BinaryFn::Sub,
        },
        vec![col, row],
        None,
    )?;
    let kk = cx.splat(DType::I64, ty.dims(), k as f64)?;
    let dir = if x.attrs.int("upper", 1) == 1 {
        CompareDir::Ge
    } else {
        CompareDir::Le
    };
    let keep = cx.push("keep", Op::Compare { dir }, vec![diff, kk], None)?;
    let zero = cx.splat(ty.dtype, ty.dims(), 0.0)?;
    cx.push("trilu", Op::Select, vec![keep, v, zero], None)
}

/// Operators whose value is always known at import time.
pub(crate) fn source(cx: &mut Ctx, op: &str, x: &Inputs) -> Result<Host> {
    let a = &x.attrs;
    match op {
        "Shape" => {
            let dims = cx.ty(x.get(0)?).dims().to_vec();
            let r = dims.len() as i64;
            let clamp = |v: i64| (if v < 0 { v + r } else { v }).clamp(0, r) as usize;
            let (s, e) = (clamp(a.int("start", 0)), clamp(a.int("end", r)));
            let d: Vec<i64> = dims[s..e.max(s)].iter().map(|&d| d as i64).collect();
            Ok(Host::ints(&d))
        }
        "Size" => Ok(Host::scalar(
            DType::I64,
            cx.ty(x.get(0)?).shape.elements() as f64,
        )),
        "Constant" => constant(x),
        "ConstantOfShape" => {
            let dims: Vec<u64> = x.host_ints(0)?.iter().map(|&d| d.max(0) as u64).collect();
            let (dtype, value) = match a.tensor("value") {
                Some(t) => {
                    let (dt, _, data) = decode(t, &super::ExternalData { dir: None })?;
                    (dt, data.to_f64_vec().first().copied().unwrap_or(0.0))
                }
                None => (DType::F32, 0.0),
            };
            let n: u64 = dims.iter().product();
            if n > super::host::FOLD_LIMIT {
                return Err(a.err(format!(
                    "a constant of shape {dims:?} is larger than the importer folds"
                )));
            }
            Ok(Host::new(dtype, dims, vec![value; n as usize]))
        }
        _ => {
            let (s, l, d) = (x.host(0)?, x.host(1)?, x.host(2)?);
            let dtype = s.dtype;
            let (s, l, d) = (s.data[0], l.data[0], d.data[0]);
            if d == 0.0 {
                return Err(a.err("Range with a delta of 0"));
            }
            let n = ((l - s) / d).ceil().max(0.0);
            if n > super::host::FOLD_LIMIT as f64 {
                return Err(a.err(format!(
                    "a range of {n} elements is larger than the importer folds"
                )));
            }
            let data: Vec<f64> = (0..n as u64)
                .map(|k| super::host::cast_elem(s + k as f64 * d, dtype))
                .collect();
            Ok(Host::new(dtype, vec![data.len() as u64], data))
        }
    }
}

fn constant(x: &Inputs) -> Result<Host> {
    let a = &x.attrs;
    if let Some(t) = a.tensor("value") {
        let (dtype, dims, data) = decode(t, &super::ExternalData { dir: None })?;
        return Ok(Host::new(dtype, dims, data.to_f64_vec()));
    }
    if a.has("value_float") {
        return Ok(Host::scalar(
            DType::F32,
            f64::from(a.float("value_float", 0.0)),
        ));
    }
    if a.has("value_int") {
        return Ok(Host::scalar(DType::I64, a.int("value_int", 0) as f64));
    }
    if let Some(v) = a.floats("value_floats") {
        return Ok(Host::new(
            DType::F32,
            vec![v.len() as u64],
            v.iter().map(|&f| f64::from(f)).collect(),
        ));
    }
    if let Some(v) = a.ints("value_ints") {
        return Ok(Host::ints(&v));
    }
    let which = a
        .first()
        .map_or("none".to_string(), |f| f.name().to_string());
    Err(a.err(format!("Constant with attribute `{which}`: only value, value_float(s) and value_int(s) are supported")))
}
