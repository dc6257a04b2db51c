//! `convolution` with XLA semantics: any dim layout, window strides, padding (negative crops),
//! lhs (input) and rhs (kernel) dilation, feature groups and batch groups.
//!
//! Computed as im2col + matmul per (batch element, group): the operand is put in canonical
//! `[N, C, spatial...]` layout, the kernel in `[O, I, spatial...]`, and for every output
//! position and kernel tap the source input position is tabulated once.

use ndarray::linalg::general_mat_mul;
use ndarray::{Array2, Array3, ArrayD, Axis, IxDyn, LinalgScalar, Slice};
use shardc_ir::{Conv, TensorType};

use super::{arr, std_owned};
use crate::tensor::{usize_dims, Data, Elem, Tensor};

/// For one spatial dim: the input index read by output position `o` at kernel tap `k`, or
/// `None` where that lands in padding or between dilated input elements.
fn tap_table(
    input: usize,
    kernel: usize,
    out: usize,
    stride: u64,
    pad_low: i64,
    lhs_dil: u64,
    rhs_dil: u64,
) -> Vec<Option<usize>> {
    let mut t = Vec::with_capacity(kernel * out);
    for k in 0..kernel {
        for o in 0..out {
            // Position in the dilated input, after removing the low padding.
            let p = o as i128 * stride as i128 + k as i128 * rhs_dil as i128 - pad_low as i128;
            let src = (p >= 0 && p % lhs_dil as i128 == 0)
                .then(|| (p / lhs_dil as i128) as usize)
                .filter(|&i| i < input);
            t.push(src);
        }
    }
    t
}

/// Row-major strides of `shape`.
fn strides(shape: &[usize]) -> Vec<usize> {
    let mut st = vec![1; shape.len()];
    for d in (0..shape.len().saturating_sub(1)).rev() {
        st[d] = st[d + 1] * shape[d + 1];
    }
    st
}

/// For every (kernel tap, output position) pair, row-major over the spatial dims: the flat
/// offset of the input element read, if any.
fn source_table(c: &Conv, in_sp: &[usize], k_sp: &[usize], out_sp: &[usize]) -> Vec<Option<usize>> {
    let tables: Vec<Vec<Option<usize>>> = (0..in_sp.len())
        .map(|s| {
            tap_table(
                in_sp[s],
                k_sp[s],
                out_sp[s],
                c.window_strides[s],
                c.padding[s].0,
                c.lhs_dilation[s],
                c.rhs_dilation[s],
            )
        })
        .collect();
    let in_st = strides(in_sp);
    let ktot: usize = k_sp.iter().product();
    let otot: usize = out_sp.iter().product();
    let (k_st, o_st) = (strides(k_sp), strides(out_sp));
    let mut table = Vec::with_capacity(ktot * otot);
    for kk in 0..ktot {
        for oo in 0..otot {
            let mut off = Some(0usize);
            for s in 0..in_sp.len() {
                let (k, o) = ((kk / k_st[s]) % k_sp[s], (oo / o_st[s]) % out_sp[s]);
                off = match (off, tables[s][k * out_sp[s] + o]) {
                    (Some(acc), Some(i)) => Some(acc + i * in_st[s]),
                    _ => None,
                };
            }
            table.push(off);
        }
    }
    table
}

fn conv_typed<T: LinalgScalar + Elem>(
    c: &Conv,
    x: &ArrayD<T>,
    k: &ArrayD<T>,
    out_ty: &TensorType,
) -> Result<ArrayD<T>, String> {
    let d = &c.dims;
    let n_sp = d.input_spatial.len();
    let xperm: Vec<usize> = [d.input_batch, d.input_feature]
        .iter()
        .chain(&d.input_spatial)
        .copied()
        .collect();
    let kperm: Vec<usize> = [d.kernel_output_feature, d.kernel_input_feature]
        .iter()
        .chain(&d.kernel_spatial)
        .copied()
        .collect();
    let out_dims: Vec<usize> = [d.output_batch, d.output_feature]
        .iter()
        .chain(&d.output_spatial)
        .copied()
        .collect();
    let out_shape = usize_dims(out_ty).map_err(|e| e.to_string())?;
    if xperm.len() != x.ndim()
        || kperm.len() != k.ndim()
        || out_dims.len() != out_shape.len()
        || c.padding.len() != n_sp
    {
        return Err("convolution dims do not match the operand ranks".into());
    }
    let xc = std_owned(x.view().permuted_axes(xperm));
    let kc = std_owned(k.view().permuted_axes(kperm));
    let (nb, cin) = (xc.shape()[0], xc.shape()[1]);
    let (cout, ci) = (kc.shape()[0], kc.shape()[1]);
    let in_sp = xc.shape()[2..].to_vec();
    let k_sp = kc.shape()[2..].to_vec();
    let out_sp: Vec<usize> = d.output_spatial.iter().map(|&i| out_shape[i]).collect();
    let (g, gb) = (c.feature_group_count as usize, c.batch_group_count as usize);
    let groups = g * gb;
    if groups == 0 || cout % groups != 0 || cin != ci * g || nb % gb != 0 {
        return Err(format!("group counts {g}/{gb} do not fit input features {cin}, kernel {ci}->{cout}, batch {nb}"));
    }
    let (nb_out, co_per) = (nb / gb, cout / groups);
    let (ktot, otot, itot) = (
        k_sp.iter().product::<usize>(),
        out_sp.iter().product::<usize>(),
        in_sp.iter().product::<usize>(),
    );
    let table = source_table(c, &in_sp, &k_sp, &out_sp);
    let x3 = xc
        .into_shape_with_order((nb, cin, itot))
        .map_err(|e| e.to_string())?;
    let w = kc
        .into_shape_with_order((cout, ci * ktot))
        .map_err(|e| e.to_string())?;
    let mut out = Array3::<T>::zeros((nb_out, cout, otot));
    let mut cols = Array2::<T>::zeros((ci * ktot, otot));
    for n in 0..nb_out {
        for q in 0..groups {
            // Feature groups take their slice of input channels; batch groups their block of
            // the batch (XLA: batch element n + q * N/batch_group_count).
            let (ch0, b) = if g > 1 {
                (q * ci, n)
            } else {
                (0, n + q * nb_out)
            };
            for i in 0..ci {
                let plane = x3.index_axis(Axis(0), b).index_axis_move(Axis(0), ch0 + i);
                for kk in 0..ktot {
                    let mut row = cols.row_mut(i * ktot + kk);
                    for (oo, dst) in row.iter_mut().enumerate() {
                        *dst = match table[kk * otot + oo] {
                            Some(off) => plane[off],
                            None => T::zero(),
                        };
                    }
                }
            }
            let block = Slice::from(q * co_per..(q + 1) * co_per);
            let wq = w.slice_axis(Axis(0), block);
            let mut dst = out
                .index_axis_mut(Axis(0), n)
                .slice_axis_move(Axis(0), block);
            general_mat_mul(T::one(), &wq, &cols, T::zero(), &mut dst);
        }
    }
    let canon: Vec<usize> = [nb_out, cout].iter().chain(&out_sp).copied().collect();
    let out = out
        .into_shape_with_order(IxDyn(&canon))
        .map_err(|e| e.to_string())?;
    // Result dim j is canonical axis a where out_dims[a] == j.
    let mut perm = vec![0; out_dims.len()];
    for (a, &j) in out_dims.iter().enumerate() {
        perm[j] = a;
    }
    Ok(std_owned(out.view().permuted_axes(perm)))
}

pub(super) fn convolution(
    c: &Conv,
    x: &Tensor,
    k: &Tensor,
    ty: &TensorType,
) -> Result<Tensor, String> {
    let data = match x.data() {
        Data::F32(a) => Data::F32(conv_typed(c, a, arr::<f32>(k)?, ty)?),
        Data::F64(a) => Data::F64(conv_typed(c, a, arr::<f64>(k)?, ty)?),
        Data::I32(a) => Data::I32(conv_typed(c, a, arr::<i32>(k)?, ty)?),
        Data::I64(a) => Data::I64(conv_typed(c, a, arr::<i64>(k)?, ty)?),
        Data::Bool(_) => return Err("convolution needs numeric operands, got bool".into()),
    };
    Ok(Tensor::from_data(x.dtype(), data))
}
