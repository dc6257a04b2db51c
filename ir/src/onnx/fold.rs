//! Dispatch of ONNX operators, and their evaluation at import time when every input is known
//! (the shape arithmetic exporters emit: `Shape → Gather → Unsqueeze → Concat → Reshape`).

use super::build::{norm_axis, Ctx, Inputs, Val};
use super::host::{broadcast_data, broadcast_shape, cast_elem, strides, Host, FOLD_LIMIT};
use super::{ops_math as m, ops_nn as nn, ops_shape as s};
use crate::dtype::DType;
use crate::error::Result;

/// Lowers one operator: folded when every input is known and the result is small, otherwise
/// as graph nodes.
pub(crate) fn lower(cx: &mut Ctx, op: &str, x: &Inputs) -> Result<Vec<Val>> {
    if x.all_host() {
        if let Some(out) = fold(op, x)? {
            if out.iter().all(|h| (h.data.len() as u64) <= FOLD_LIMIT) {
                return Ok(out.into_iter().map(Val::host).collect());
            }
        }
    }
    let one = |v: crate::graph::ValueId| Ok(vec![Val::Node(v)]);
    match op {
        "Add" | "Sub" | "Mul" | "Div" | "Pow" | "Max" | "Min" | "Sum" | "Mean" | "And" | "Or"
        | "Xor" | "Mod" => one(m::binary(cx, op, x)?),
        "Equal" | "Less" | "Greater" | "LessOrEqual" | "GreaterOrEqual" => {
            one(m::compare(cx, op, x)?)
        }
        "Abs" | "Neg" | "Exp" | "Log" | "Tanh" | "Sigmoid" | "Relu" | "Sqrt" | "Sin" | "Cos"
        | "Not" | "Reciprocal" | "Erf" | "Sign" | "Softplus" | "IsNaN" | "IsInf" | "Floor"
        | "Ceil" | "LeakyRelu" | "HardSigmoid" | "HardSwish" | "Gelu" => one(m::unary(cx, op, x)?),
        "Clip" => one(m::clip(cx, x)?),
        "Where" => one(m::select(cx, x)?),
        "Cast" | "CastLike" => one(m::cast(cx, op, x)?),
        "Identity" | "Dropout" => s::identity(cx, x),
        "MatMul" => one(m::matmul(cx, x)?),
        "Gemm" => one(m::gemm(cx, x)?),
        "Softmax" | "LogSoftmax" => one(m::softmax(cx, x, op == "LogSoftmax")?),
        "LayerNormalization" => one(m::layer_norm(cx, x)?),
        "SimplifiedLayerNormalization" | "RMSNormalization" => one(m::rms_norm(cx, x)?),
        "SkipSimplifiedLayerNormalization" => m::skip_rms_norm(cx, x),
        "ReduceSum" | "ReduceMean" | "ReduceMax" | "ReduceMin" | "ReduceL2" | "ReduceSumSquare" => {
            one(m::reduce(cx, op, x)?)
        }
        "CumSum" => one(m::cumsum(cx, x)?),
        "Reshape" | "Flatten" | "Squeeze" | "Unsqueeze" => one(s::reshape_like(cx, op, x)?),
        "Transpose" => one(s::transpose(cx, x)?),
        "Gather" => one(s::gather(cx, x)?),
        "GatherElements" => one(s::gather_elements(cx, x)?),
        "Concat" => one(s::concat(cx, x)?),
        "Slice" => one(s::slice(cx, x)?),
        "Split" => s::split(cx, x),
        "Expand" => one(s::expand(cx, x)?),
        "Tile" => one(s::tile(cx, x)?),
        "Trilu" => one(s::trilu(cx, x)?),
        "Shape" | "Size" | "Constant" | "ConstantOfShape" | "Range" => {
            Ok(vec![Val::host(s::source(cx, op, x)?)])
        }
        "Conv" => one(nn::conv(cx, x)?),
        "BatchNormalization" => one(nn::batch_norm(cx, x)?),
        "MaxPool" | "AveragePool" => one(nn::pool(cx, op, x)?),
        "GlobalAveragePool" => one(nn::global_average_pool(cx, x)?),
        _ => Err(x
            .attrs
            .err("the ONNX importer does not support this operator")),
    }
}

/// The operator evaluated on known inputs; `None` where it is not evaluated at import time.
fn fold(op: &str, x: &Inputs) -> Result<Option<Vec<Host>>> {
    let h = |i: usize| x.host(i);
    let out = match op {
        "Identity" => h(0)?.clone(),
        "Cast" => h(0)?.cast(super::tensor::dtype_of(
            x.attrs.int("to", 1) as i32,
            "Cast",
        )?),
        "CastLike" => h(0)?.cast(h(1)?.dtype),
        "Reshape" | "Flatten" | "Squeeze" | "Unsqueeze" => {
            let t = h(0)?;
            let dims = s::reshaped_dims(op, x, &t.dims)?;
            Host::new(t.dtype, dims, t.data.clone())
        }
        "Concat" => {
            let parts: Vec<&Host> = (0..x.vals.len()).map(h).collect::<Result<_>>()?;
            concat(x, &parts)?
        }
        "Gather" => gather(x, h(0)?, h(1)?)?,
        "GatherElements" => {
            let (t, idx) = (h(0)?, h(1)?);
            let offsets = s::gather_elements_offsets(x, &t.dims, idx)?;
            Host::new(
                t.dtype,
                idx.dims.clone(),
                offsets.iter().map(|&o| t.data[o as usize]).collect(),
            )
        }
        "Slice" => {
            let t = h(0)?;
            let sl = s::slice_params(x, &t.dims)?;
            slice(t, &sl)
        }
        "Expand" => {
            let t = h(0)?;
            let shape: Vec<u64> = h(1)?.as_i64s().iter().map(|&d| d.max(0) as u64).collect();
            let dims = broadcast_shape(&t.dims, &shape).ok_or_else(|| {
                x.attrs
                    .err(format!("cannot expand {:?} to {shape:?}", t.dims))
            })?;
            Host::new(t.dtype, dims.clone(), broadcast_data(t, &dims))
        }
        "Where" => {
            let (c, a, b) = (h(0)?, h(1)?, h(2)?);
            let dims = broadcast_shape(&c.dims, &a.dims)
                .and_then(|d| broadcast_shape(&d, &b.dims))
                .ok_or_else(|| x.attrs.err("operands do not broadcast"))?;
            let (c, a, b) = (
                broadcast_data(c, &dims),
                broadcast_data(a, &dims),
                broadcast_data(b, &dims),
            );
            let data = c
                .iter()
                .zip(a.iter().zip(&b))
                .map(|(&c, (&a, &b))| if c != 0.0 { a } else { b })
                .collect();
            Host::new(h(1)?.dtype, dims, data)
        }
        "Add" | "Sub" | "Mul" | "Div" | "Pow" | "Max" | "Min" | "Sum" | "Mod" | "And" | "Or"
        | "Xor" | "Equal" | "Less" | "Greater" | "LessOrEqual" | "GreaterOrEqual" => {
            let mut acc = h(0)?.clone();
            for i in 1..x.vals.len() {
                acc = elementwise(op, x, &acc, h(i)?)?;
            }
            acc
        }
        "Neg" | "Abs" | "Not" | "Sqrt" | "Floor" | "Ceil" | "Exp" | "Log" | "Sin" | "Cos"
        | "Reciprocal" | "Sign" | "Relu" => {
            let t = h(0)?;
            let f = |v: f64| match op {
                "Neg" => -v,
                "Abs" => v.abs(),
                "Not" => f64::from(u8::from(v == 0.0)),
                "Sqrt" => v.sqrt(),
                "Floor" => v.floor(),
                "Ceil" => v.ceil(),
                "Exp" => v.exp(),
                "Log" => v.ln(),
                "Sin" => v.sin(),
                "Cos" => v.cos(),
                "Reciprocal" => 1.0 / v,
                "Sign" => {
                    if v > 0.0 {
                        1.0
                    } else if v < 0.0 {
                        -1.0
                    } else {
                        0.0
                    }
                }
                _ => v.max(0.0),
            };
            Host::new(
                t.dtype,
                t.dims.clone(),
                t.data.iter().map(|&v| cast_elem(f(v), t.dtype)).collect(),
            )
        }
        "ReduceProd" | "ReduceSum" | "ReduceMax" | "ReduceMin"
            if x.attrs.int("keepdims", 1) == 0 || h(0)?.dims.len() <= 1 =>
        {
            let t = h(0)?;
            let axes = x.ints_input_or_attr(1, "axes")?.unwrap_or_default();
            if !(axes.is_empty() || t.dims.len() == 1) {
                return Ok(None);
            }
            let data = &t.data;
            let v = match op {
                "ReduceProd" => data.iter().product(),
                "ReduceSum" => data.iter().sum(),
                "ReduceMax" => data.iter().copied().fold(f64::MIN, f64::max),
                _ => data.iter().copied().fold(f64::MAX, f64::min),
            };
            let dims = if x.attrs.int("keepdims", 1) == 1 {
                vec![1; t.dims.len()]
            } else {
                vec![]
            };
            Host::new(t.dtype, dims, vec![v])
        }
        _ => return Ok(None),
    };
    Ok(Some(vec![out]))
}

fn elementwise(op: &str, x: &Inputs, a: &Host, b: &Host) -> Result<Host> {
    let dims = broadcast_shape(&a.dims, &b.dims).ok_or_else(|| {
        x.attrs
            .err(format!("{:?} and {:?} do not broadcast", a.dims, b.dims))
    })?;
    let (da, db) = (broadcast_data(a, &dims), broadcast_data(b, &dims));
    let int = a.dtype.is_int();
    let cmp = matches!(
        op,
        "Equal" | "Less" | "Greater" | "LessOrEqual" | "GreaterOrEqual"
    );
    let f = |p: f64, q: f64| -> f64 {
        let bool_ = |c: bool| f64::from(u8::from(c));
        match op {
            "Add" | "Sum" => p + q,
            "Sub" => p - q,
            "Mul" => p * q,
            "Div" if int => {
                if q == 0.0 {
                    0.0
                } else {
                    (p / q).trunc()
                }
            }
            "Div" => p / q,
            "Pow" => p.powf(q),
            "Max" => p.max(q),
            "Min" => p.min(q),
            // Integer Mod takes the divisor's sign (fmod=0), as Python's `%`.
            "Mod" if x.attrs.int("fmod", 0) == 1 || !int => p % q,
            "Mod" => {
                if q == 0.0 {
                    0.0
                } else {
                    p - (p / q).floor() * q
                }
            }
            "And" => bool_(p != 0.0 && q != 0.0),
            "Or" => bool_(p != 0.0 || q != 0.0),
            "Xor" => bool_((p != 0.0) != (q != 0.0)),
            "Equal" => bool_(p == q),
            "Less" => bool_(p < q),
            "Greater" => bool_(p > q),
            "LessOrEqual" => bool_(p <= q),
            _ => bool_(p >= q),
        }
    };
    let dtype = if cmp { DType::Bool } else { a.dtype };
    let data = da
        .iter()
        .zip(&db)
        .map(|(&p, &q)| cast_elem(f(p, q), dtype))
        .collect();
    Ok(Host::new(dtype, dims, data))
}

fn concat(x: &Inputs, parts: &[&Host]) -> Result<Host> {
    let first = parts
        .first()
        .ok_or_else(|| x.attrs.err("needs at least one input"))?;
    let rank = first.dims.len();
    let axis = norm_axis(&x.attrs, x.attrs.int("axis", 0), rank)?;
    let mut dims = first.dims.clone();
    dims[axis] = 0;
    for p in parts {
        if p.dims.len() != rank || (0..rank).any(|d| d != axis && p.dims[d] != first.dims[d]) {
            return Err(x.attrs.err(format!(
                "inputs {:?} and {:?} do not concatenate along {axis}",
                first.dims, p.dims
            )));
        }
        dims[axis] += p.dims[axis];
    }
    let outer: u64 = first.dims[..axis].iter().product();
    let inner: u64 = first.dims[axis + 1..].iter().product();
    let mut data = Vec::with_capacity(dims.iter().product::<u64>() as usize);
    for o in 0..outer {
        for p in parts {
            let chunk = (p.dims[axis] * inner) as usize;
            data.extend_from_slice(&p.data[o as usize * chunk..(o as usize + 1) * chunk]);
        }
    }
    Ok(Host::new(first.dtype, dims, data))
}

fn gather(x: &Inputs, t: &Host, idx: &Host) -> Result<Host> {
    let axis = norm_axis(&x.attrs, x.attrs.int("axis", 0), t.dims.len())?;
    let n = t.dims[axis] as i64;
    let outer: u64 = t.dims[..axis].iter().product();
    let inner: u64 = t.dims[axis + 1..].iter().product();
    let mut data = Vec::new();
    for o in 0..outer {
        for &i in &idx.data {
            let i = i as i64;
            let i = if i < 0 { i + n } else { i };
            if i < 0 || i >= n {
                return Err(x
                    .attrs
                    .err(format!("index {i} is out of range for a dim of {n}")));
            }
            let start = ((o * t.dims[axis] + i as u64) * inner) as usize;
            data.extend_from_slice(&t.data[start..start + inner as usize]);
        }
    }
    let mut dims = t.dims[..axis].to_vec();
    dims.extend(&idx.dims);
    dims.extend(&t.dims[axis + 1..]);
    Ok(Host::new(t.dtype, dims, data))
}

/// Per dim `(start, step, count)`: element `k` of the result along a dim is `start + k*step`.
pub(crate) type SliceParams = Vec<(i64, i64, u64)>;

fn slice(t: &Host, sl: &SliceParams) -> Host {
    let dims: Vec<u64> = sl.iter().map(|p| p.2).collect();
    let st = strides(&t.dims);
    let out_st = strides(&dims);
    let n: u64 = dims.iter().product();
    let data = (0..n)
        .map(|i| {
            let mut src = 0i64;
            for d in 0..dims.len() {
                let k = ((i / out_st[d]) % dims[d]) as i64;
                src += (sl[d].0 + k * sl[d].1) * st[d] as i64;
            }
            t.data[src as usize]
        })
        .collect();
    Host::new(t.dtype, dims, data)
}
