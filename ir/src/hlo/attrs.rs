//! Readers for HLO attribute values: `{1,0}`, `slice={[0:4:1], ...}`, `padding=0_1x2_3`,
//! `window={size=3x3 ...}`, `dim_labels=b01f_01io->b01f`, constant literals.

use crate::op::{Conv, ConvDims};

use super::text::int_list;

/// `{1,0}` (or `1,0`) as integers.
pub(crate) fn ints(v: &str) -> Result<Vec<u64>, String> {
    let inner = v.trim().trim_start_matches('{').trim_end_matches('}');
    int_list(inner).ok_or_else(|| format!("expected a list of integers like {{1,0}}, got `{v}`"))
}

/// `{1,0}` as dims (usize).
pub(crate) fn dims(v: &str) -> Result<Vec<usize>, String> {
    Ok(ints(v)?.into_iter().map(|d| d as usize).collect())
}

/// `{[0:4], [1:3:2]}` as (start, limit, stride) per dim.
/// Per-dim (start, limit, stride) of a slice.
type SliceBounds = (Vec<u64>, Vec<u64>, Vec<u64>);

pub(crate) fn slice(v: &str) -> Result<SliceBounds, String> {
    let bad = || format!("expected slice={{[start:limit:stride], ...}}, got `{v}`");
    let inner = v.trim().strip_prefix('{').and_then(|s| s.strip_suffix('}'));
    let inner = inner.ok_or_else(bad)?;
    let (mut s, mut l, mut st) = (Vec::new(), Vec::new(), Vec::new());
    for part in inner.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let p = part.strip_prefix('[').and_then(|p| p.strip_suffix(']'));
        let nums: Vec<u64> = p
            .ok_or_else(bad)?
            .split(':')
            .map(|x| x.trim().parse().map_err(|_| bad()))
            .collect::<Result<_, _>>()?;
        match nums[..] {
            [a, b] => (s.push(a), l.push(b), st.push(1)),
            [a, b, c] => (s.push(a), l.push(b), st.push(c)),
            _ => return Err(bad()),
        };
    }
    Ok((s, l, st))
}

/// `0_0x1_1_0`: per dim `low_high[_interior]`.
/// Per-dim (low, high, interior) padding.
type Padding = (Vec<i64>, Vec<i64>, Vec<u64>);

pub(crate) fn padding(v: &str) -> Result<Padding, String> {
    let bad = || format!("expected padding=LOW_HIGH[_INTERIOR]x..., got `{v}`");
    let (mut lo, mut hi, mut int) = (Vec::new(), Vec::new(), Vec::new());
    for d in v.trim().split('x').filter(|d| !d.is_empty()) {
        let n: Vec<i64> = d
            .split('_')
            .map(|x| x.parse().map_err(|_| bad()))
            .collect::<Result<_, _>>()?;
        match n[..] {
            [a, b] => (lo.push(a), hi.push(b), int.push(0)),
            [a, b, c] if c >= 0 => (lo.push(a), hi.push(b), int.push(c as u64)),
            _ => return Err(bad()),
        };
    }
    Ok((lo, hi, int))
}

/// Per-dim `AxBxC` numbers.
fn by_x(v: &str) -> Result<Vec<u64>, String> {
    v.split('x')
        .map(|x| {
            x.parse()
                .map_err(|_| format!("expected numbers like 3x3 in the window, got `{v}`"))
        })
        .collect()
}

/// The convolution's window, dim labels and group counts as our [`Conv`], the window's `size=`
/// (the kernel's spatial sizes must match it) and the window dims `rhs_reversal=` flips.
pub(crate) fn convolution(
    window: Option<&str>,
    dim_labels: &str,
    feature_groups: Option<&str>,
    batch_groups: Option<&str>,
) -> Result<(Conv, Vec<u64>, Vec<usize>), String> {
    let dims = conv_dims(dim_labels)?;
    let n = dims.input_spatial.len();
    let mut size = vec![1u64; n];
    let mut conv = Conv {
        window_strides: vec![1; n],
        padding: vec![(0, 0); n],
        lhs_dilation: vec![1; n],
        rhs_dilation: vec![1; n],
        feature_group_count: 1,
        batch_group_count: 1,
        dims,
    };
    let mut reversal = vec![0u64; n];
    if let Some(w) = window {
        let inner = w.trim().trim_start_matches('{').trim_end_matches('}');
        for field in inner.split_whitespace() {
            let (k, v) = field
                .split_once('=')
                .ok_or_else(|| format!("expected KEY=VALUE in the window, got `{field}`"))?;
            let check = |xs: Vec<u64>| {
                if xs.len() == n {
                    Ok(xs)
                } else {
                    Err(format!(
                        "window {k} has {} entries, dim_labels give {n} spatial dims",
                        xs.len()
                    ))
                }
            };
            match k {
                "size" => size = check(by_x(v)?)?,
                "stride" => conv.window_strides = check(by_x(v)?)?,
                "lhs_dilate" => conv.lhs_dilation = check(by_x(v)?)?,
                "rhs_dilate" => conv.rhs_dilation = check(by_x(v)?)?,
                "pad" => {
                    let (lo, hi, int) = padding(v)?;
                    if lo.len() != n || int.iter().any(|&i| i != 0) {
                        return Err(format!("window pad `{v}` needs {n} LOW_HIGH pairs"));
                    }
                    conv.padding = lo.into_iter().zip(hi).collect();
                }
                "rhs_reversal" => reversal = check(by_x(v)?)?,
                _ => return Err(format!("unknown window field `{k}`")),
            }
        }
    }
    // Flipping a window dim of size 1 changes nothing.
    let flipped: Vec<usize> = (0..n)
        .filter(|&i| reversal[i] != 0 && size[i] != 1)
        .collect();
    let count = |v: Option<&str>, what: &str| -> Result<u64, String> {
        v.map_or(Ok(1), |v| {
            v.trim()
                .parse()
                .ok()
                .filter(|&c| c >= 1)
                .ok_or_else(|| format!("{what} must be a positive integer, got `{v}`"))
        })
    };
    conv.feature_group_count = count(feature_groups, "feature_group_count")?;
    conv.batch_group_count = count(batch_groups, "batch_group_count")?;
    Ok((conv, size, flipped))
}

/// A `reduce-window`/`select-and-scatter` window over every dim of a rank-`rank` operand:
/// `{size=1x2x2x1 stride=1x2x2x1 pad=0_0x1_0x.. lhs_dilate=.. rhs_dilate=..}`; fields left out
/// are 1 (size, stride, dilations) or 0 (padding). Padding must not be negative.
pub(crate) fn window(w: &str, rank: usize) -> Result<crate::op::Window, String> {
    let mut win = crate::op::Window::simple(vec![1; rank], vec![1; rank]);
    let inner = w.trim().trim_start_matches('{').trim_end_matches('}');
    for field in inner.split_whitespace() {
        let (k, v) = field
            .split_once('=')
            .ok_or_else(|| format!("expected KEY=VALUE in the window, got `{field}`"))?;
        let check = |xs: Vec<u64>| {
            if xs.len() == rank {
                Ok(xs)
            } else {
                Err(format!(
                    "window {k} has {} entries, the operand has rank {rank}",
                    xs.len()
                ))
            }
        };
        match k {
            "size" => win.size = check(by_x(v)?)?,
            "stride" => win.stride = check(by_x(v)?)?,
            "lhs_dilate" => win.base_dilation = check(by_x(v)?)?,
            "rhs_dilate" => win.window_dilation = check(by_x(v)?)?,
            "pad" => {
                let (lo, hi, int) = padding(v)?;
                if lo.len() != rank || int.iter().any(|&i| i != 0) {
                    return Err(format!("window pad `{v}` needs {rank} LOW_HIGH pairs"));
                }
                win.padding = lo
                    .into_iter()
                    .zip(hi)
                    .map(|(l, h)| match (u64::try_from(l), u64::try_from(h)) {
                        (Ok(l), Ok(h)) => Ok((l, h)),
                        _ => Err(format!("window pad `{v}` is negative; unsupported")),
                    })
                    .collect::<Result<_, _>>()?;
            }
            _ => return Err(format!("unknown window field `{k}`")),
        }
    }
    Ok(win)
}

/// `b01f_01io->b01f`: which dim of each tensor is batch, feature and each spatial dim.
fn conv_dims(labels: &str) -> Result<ConvDims, String> {
    let bad = |m: &str| format!("dim_labels `{labels}`: {m}");
    let (ins, out) = labels
        .trim()
        .split_once("->")
        .ok_or_else(|| bad("expected LHS_RHS->OUT"))?;
    let (lhs, rhs) = ins
        .split_once('_')
        .ok_or_else(|| bad("expected LHS_RHS->OUT"))?;
    let n = lhs.chars().filter(char::is_ascii_digit).count();
    if lhs.len() != n + 2 || rhs.len() != n + 2 || out.len() != n + 2 {
        return Err(bad(
            "each part needs the same spatial digits plus two letters",
        ));
    }
    let find = |s: &str, c: char| s.find(c).ok_or_else(|| bad(&format!("`{s}` lacks `{c}`")));
    let spatial = |s: &str| -> Result<Vec<usize>, String> {
        (0..n)
            .map(|k| {
                let c =
                    char::from_digit(k as u32, 10).ok_or_else(|| bad("too many spatial dims"))?;
                find(s, c)
            })
            .collect()
    };
    Ok(ConvDims {
        input_batch: find(lhs, 'b')?,
        input_feature: find(lhs, 'f')?,
        input_spatial: spatial(lhs)?,
        kernel_input_feature: find(rhs, 'i')?,
        kernel_output_feature: find(rhs, 'o')?,
        kernel_spatial: spatial(rhs)?,
        output_batch: find(out, 'b')?,
        output_feature: find(out, 'f')?,
        output_spatial: spatial(out)?,
    })
}

/// A constant's literal (`0`, `-inf`, `{1, 2}`, `{ {1,2},{3,4} }`, `true`) as numbers, row-major.
pub(crate) fn literal(text: &str) -> Result<Vec<f64>, String> {
    let flat = text.replace(['{', '}'], " ");
    flat.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|t| !t.is_empty())
        .map(|t| match t {
            "true" => Ok(1.0),
            "false" => Ok(0.0),
            "inf" => Ok(f64::INFINITY),
            "-inf" => Ok(f64::NEG_INFINITY),
            "nan" | "-nan" => Ok(f64::NAN),
            _ => t
                .parse::<f64>()
                .map_err(|_| format!("expected a number in the literal, got `{t}`")),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_forms_read_as_xla_defines_them() {
        assert_eq!(dims("{1,0}").unwrap(), vec![1, 0]);
        assert_eq!(dims("{}").unwrap(), Vec::<usize>::new());
        assert_eq!(
            slice("{[0:4], [1:7:2]}").unwrap(),
            (vec![0, 1], vec![4, 7], vec![1, 2])
        );
        assert_eq!(
            padding("0_0x-1_2_1").unwrap(),
            (vec![0, -1], vec![0, 2], vec![0, 1])
        );
        assert_eq!(
            literal("{ {1, 2}, {-inf, 3.5e-1} }").unwrap()[..3],
            [1.0, 2.0, f64::NEG_INFINITY]
        );
        let (c, size, flipped) = convolution(
            Some("{size=3x3 stride=2x1 pad=1_1x0_2 rhs_dilate=1x2}"),
            "b01f_01io->b01f",
            None,
            Some("1"),
        )
        .unwrap();
        assert_eq!(size, vec![3, 3]);
        assert!(flipped.is_empty());
        assert_eq!(c.dims.input_feature, 3);
        assert_eq!(c.dims.kernel_input_feature, 2);
        assert_eq!(c.dims.kernel_spatial, vec![0, 1]);
        assert_eq!(c.padding, vec![(1, 1), (0, 2)]);
        assert_eq!(c.rhs_dilation, vec![1, 2]);
        assert!(convolution(None, "b01f_01io->b0f", None, None).is_err());
    }
}
