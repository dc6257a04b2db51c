//! The reference executor's convolution against a naive f64 convolution written straight from
//! XLA's definition: strides, negative padding, dilations, feature and batch groups, layouts.

use shardc_ir::{Conv, ConvDims, DType, Graph, Op};
use shardc_runtime::{execute, random_inputs};

mod common;
use common::*;

/// Parameters of a naive NC(spatial) convolution, written straight from XLA's definition.
struct NaiveConv {
    stride: Vec<usize>,
    pad: Vec<(i64, i64)>,
    lhs_dil: Vec<usize>,
    rhs_dil: Vec<usize>,
    groups: usize,
    batch_groups: usize,
}

/// Row-major strides.
fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for d in (0..shape.len().saturating_sub(1)).rev() {
        s[d] = s[d + 1] * shape[d + 1];
    }
    s
}

fn unravel(mut i: usize, shape: &[usize]) -> Vec<usize> {
    let mut c = vec![0; shape.len()];
    for d in (0..shape.len()).rev() {
        c[d] = i % shape[d];
        i /= shape[d];
    }
    c
}

/// x: [N, C, S...], w: [O, I, K...]. Builds the dilated, padded input explicitly, then slides.
fn naive_conv(
    x: &[f64],
    xs: &[usize],
    w: &[f64],
    ws: &[usize],
    p: &NaiveConv,
) -> (Vec<f64>, Vec<usize>) {
    let sp = xs.len() - 2;
    let (n, c) = (xs[0], xs[1]);
    let (o, i_per) = (ws[0], ws[1]);
    // Dilate then pad each spatial dim (negative padding crops).
    let mut padded_shape = vec![n, c];
    for d in 0..sp {
        let dil = (xs[2 + d] - 1) * p.lhs_dil[d] + 1;
        padded_shape.push((dil as i64 + p.pad[d].0 + p.pad[d].1) as usize);
    }
    let total: usize = padded_shape.iter().product();
    let mut xp = vec![0.0; total];
    let pst = strides(&padded_shape);
    for (flat, &v) in x.iter().enumerate() {
        let idx = unravel(flat, xs);
        let mut off = idx[0] * pst[0] + idx[1] * pst[1];
        let mut inside = true;
        for d in 0..sp {
            let pos = (idx[2 + d] * p.lhs_dil[d]) as i64 + p.pad[d].0;
            if pos < 0 || pos >= padded_shape[2 + d] as i64 {
                inside = false;
            }
            off += pos.max(0) as usize * pst[2 + d];
        }
        if inside {
            xp[off] = v;
        }
    }
    let n_out = n / p.batch_groups;
    let mut out_shape = vec![n_out, o];
    for d in 0..sp {
        let dk = (ws[2 + d] - 1) * p.rhs_dil[d] + 1;
        out_shape.push((padded_shape[2 + d] - dk) / p.stride[d] + 1);
    }
    let k_sp = &ws[2..];
    let k_total: usize = k_sp.iter().product();
    let out_total: usize = out_shape.iter().product();
    let wst = strides(ws);
    let mut out = vec![0.0; out_total];
    let o_per_group = o / (p.groups * p.batch_groups);
    for (flat, slot) in out.iter_mut().enumerate() {
        let oi = unravel(flat, &out_shape);
        let (b, f) = (oi[0], oi[1]);
        let group = f / o_per_group;
        let (ch0, batch) = if p.groups > 1 {
            (group * i_per, b)
        } else {
            (0, b + group * n_out)
        };
        let mut acc = 0.0;
        for ic in 0..i_per {
            for kk in 0..k_total {
                let kidx = unravel(kk, k_sp);
                let mut off = batch * pst[0] + (ch0 + ic) * pst[1];
                for d in 0..sp {
                    off += (oi[2 + d] * p.stride[d] + kidx[d] * p.rhs_dil[d]) * pst[2 + d];
                }
                let mut woff = f * wst[0] + ic * wst[1];
                for d in 0..sp {
                    woff += kidx[d] * wst[2 + d];
                }
                acc += xp[off] * w[woff];
            }
        }
        *slot = acc;
    }
    (out, out_shape)
}

fn check_conv(xs: &[u64], ws: &[u64], p: NaiveConv) {
    let sp = xs.len() - 2;
    let conv = Conv {
        dims: ConvDims::nchw(sp),
        window_strides: p.stride.iter().map(|&s| s as u64).collect(),
        padding: p.pad.clone(),
        lhs_dilation: p.lhs_dil.iter().map(|&s| s as u64).collect(),
        rhs_dilation: p.rhs_dil.iter().map(|&s| s as u64).collect(),
        feature_group_count: p.groups as u64,
        batch_group_count: p.batch_groups as u64,
    };
    let mut g = Graph::new("conv");
    let x = input(&mut g, "x", DType::F64, xs);
    let w = input(&mut g, "w", DType::F64, ws);
    let y = g
        .push("y", Op::Convolution(conv), vec![x, w], None)
        .unwrap();
    g.outputs.push(y);
    let ins = random_inputs(&g, 5);
    let got = execute(&g, &ins).unwrap().remove(0);
    let xsu: Vec<usize> = xs.iter().map(|&d| d as usize).collect();
    let wsu: Vec<usize> = ws.iter().map(|&d| d as usize).collect();
    let (want, shape) = naive_conv(&ins[0].to_f64_vec(), &xsu, &ins[1].to_f64_vec(), &wsu, &p);
    assert_eq!(got.shape(), shape.as_slice());
    assert_close(&got.to_f64_vec(), &want, 1e-13);
}

fn plain(sp: usize) -> NaiveConv {
    NaiveConv {
        stride: vec![1; sp],
        pad: vec![(0, 0); sp],
        lhs_dil: vec![1; sp],
        rhs_dil: vec![1; sp],
        groups: 1,
        batch_groups: 1,
    }
}

#[test]
fn conv1d_with_stride_padding_and_dilation_matches_naive() {
    check_conv(&[2, 3, 11], &[4, 3, 3], plain(1));
    check_conv(
        &[2, 3, 11],
        &[4, 3, 3],
        NaiveConv {
            stride: vec![2],
            pad: vec![(2, 1)],
            rhs_dil: vec![2],
            ..plain(1)
        },
    );
    check_conv(
        &[1, 2, 6],
        &[2, 2, 2],
        NaiveConv {
            pad: vec![(-1, 2)],
            lhs_dil: vec![2],
            ..plain(1)
        },
    );
}

#[test]
fn conv2d_with_groups_matches_naive() {
    check_conv(
        &[2, 4, 7, 6],
        &[6, 4, 3, 3],
        NaiveConv {
            stride: vec![2, 1],
            pad: vec![(1, 1), (0, 2)],
            ..plain(2)
        },
    );
    // Feature groups: 4 input channels in 2 groups of 2, 6 outputs in 2 groups of 3.
    check_conv(
        &[2, 4, 5, 5],
        &[6, 2, 3, 2],
        NaiveConv {
            groups: 2,
            rhs_dil: vec![1, 2],
            pad: vec![(1, 1), (1, 1)],
            ..plain(2)
        },
    );
    // Depthwise: one input channel per group.
    check_conv(
        &[1, 3, 4, 4],
        &[3, 1, 2, 2],
        NaiveConv {
            groups: 3,
            ..plain(2)
        },
    );
    // Batch groups (the weight gradient of a grouped conv): batch 4 in 2 groups of 2.
    check_conv(
        &[4, 3, 5, 5],
        &[4, 3, 3, 3],
        NaiveConv {
            batch_groups: 2,
            pad: vec![(1, 0), (0, -1)],
            ..plain(2)
        },
    );
}

#[test]
fn conv_honours_dimension_numbers() {
    // NHWC input, HWIO kernel, NHWC output: the same numbers as the NCHW run, transposed.
    let dims = ConvDims {
        input_batch: 0,
        input_feature: 3,
        input_spatial: vec![1, 2],
        kernel_input_feature: 2,
        kernel_output_feature: 3,
        kernel_spatial: vec![0, 1],
        output_batch: 0,
        output_feature: 3,
        output_spatial: vec![1, 2],
    };
    let mut conv = Conv::simple(2, 1, 1);
    conv.dims = dims;
    let mut g = Graph::new("nhwc");
    let x = input(&mut g, "x", DType::F64, &[2, 5, 4, 3]);
    let w = input(&mut g, "w", DType::F64, &[3, 3, 3, 2]);
    let y = g
        .push("y", Op::Convolution(conv), vec![x, w], None)
        .unwrap();
    g.outputs.push(y);
    let ins = random_inputs(&g, 11);
    let got = execute(&g, &ins).unwrap().remove(0);
    assert_eq!(got.shape(), &[2, 5, 4, 2]);
    // Transpose inputs to NCHW / OIHW and run the naive reference.
    let (xv, wv) = (ins[0].to_f64_vec(), ins[1].to_f64_vec());
    let mut xn = vec![0.0; xv.len()];
    for (f, &v) in xv.iter().enumerate() {
        let i = unravel(f, &[2, 5, 4, 3]);
        xn[((i[0] * 3 + i[3]) * 5 + i[1]) * 4 + i[2]] = v;
    }
    let mut wn = vec![0.0; wv.len()];
    for (f, &v) in wv.iter().enumerate() {
        let i = unravel(f, &[3, 3, 3, 2]);
        wn[((i[3] * 3 + i[2]) * 3 + i[0]) * 3 + i[1]] = v;
    }
    let p = NaiveConv {
        pad: vec![(1, 1), (1, 1)],
        ..plain(2)
    };
    let (want, shape) = naive_conv(&xn, &[2, 3, 5, 4], &wn, &[2, 3, 3, 3], &p);
    assert_eq!(shape, vec![2, 2, 5, 4]);
    let gv = got.to_f64_vec();
    for (f, &v) in want.iter().enumerate() {
        let i = unravel(f, &shape);
        let g_at = gv[((i[0] * 5 + i[2]) * 4 + i[3]) * 2 + i[1]];
        assert!((g_at - v).abs() < 1e-12, "at {i:?}: {g_at} vs {v}");
    }
}
