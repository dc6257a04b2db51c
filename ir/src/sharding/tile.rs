//! Tile assignments: which device holds which tile, as an explicit list or XLA's iota form.

use std::fmt;

/// The device order of a tiled sharding, row-major over the tile shape.
///
/// XLA writes it either as an explicit list (`0,2,1,3`) or in the iota form `<=[2,2]T(1,0)`:
/// `0..n` reshaped to `reshape`, transposed by `perm`, then read row-major.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum TileDevices {
    /// Every device id, row-major over the tile shape.
    Explicit(Vec<u32>),
    /// `<=[reshape]T(perm)`; `perm` is the identity when XLA prints no `T(..)`.
    Iota { reshape: Vec<u64>, perm: Vec<usize> },
}

impl TileDevices {
    /// The number of devices listed.
    pub fn len(&self) -> u64 {
        match self {
            TileDevices::Explicit(d) => d.len() as u64,
            TileDevices::Iota { reshape, .. } => reshape.iter().product(),
        }
    }

    /// Whether no device is listed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The explicit device list. The caller bounds the size (a parsed tile shape's product).
    pub fn expand(&self) -> Vec<u32> {
        match self {
            TileDevices::Explicit(d) => d.clone(),
            TileDevices::Iota { reshape, perm } => iota_expand(reshape, perm),
        }
    }
}

impl fmt::Display for TileDevices {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TileDevices::Explicit(d) => write!(f, "{}", join(d)),
            TileDevices::Iota { reshape, perm } => {
                write!(f, "<=[{}]", join(reshape))?;
                if perm.iter().enumerate().any(|(i, &p)| i != p) {
                    write!(f, "T({})", join(perm))?;
                }
                Ok(())
            }
        }
    }
}

pub(crate) fn join<T: fmt::Display>(xs: &[T]) -> String {
    xs.iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// `0..n` reshaped to `reshape`, transposed by `perm`, flattened row-major.
fn iota_expand(reshape: &[u64], perm: &[usize]) -> Vec<u32> {
    let n: u64 = reshape.iter().product();
    // Strides of the source (row-major over `reshape`), visited in the transposed order.
    let mut strides = vec![1u64; reshape.len()];
    for k in (0..reshape.len().saturating_sub(1)).rev() {
        strides[k] = strides[k + 1] * reshape[k + 1];
    }
    let sizes: Vec<u64> = perm.iter().map(|&p| reshape[p]).collect();
    let pstrides: Vec<u64> = perm.iter().map(|&p| strides[p]).collect();
    let mut out = Vec::with_capacity(n as usize);
    let mut idx = vec![0u64; sizes.len()];
    for _ in 0..n {
        out.push(idx.iter().zip(&pstrides).map(|(i, s)| i * s).sum::<u64>() as u32);
        for k in (0..idx.len()).rev() {
            idx[k] += 1;
            if idx[k] < sizes[k] {
                break;
            }
            idx[k] = 0;
        }
    }
    out
}

/// One "digit" of a device list read as a mixed-radix number: along `size` consecutive
/// positions (each `block` positions apart) the device id grows by `stride`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Digit {
    pub size: u64,
    pub stride: u64,
}

/// Reads a device list as digits, innermost first, never letting one digit span a boundary in
/// `cuts` (positions counts, e.g. the tile dims' suffix products). `None` when the list is not a
/// transposed iota of `0..n`.
pub(crate) fn digits(devices: &[u32], cuts: &[u64]) -> Option<Vec<Digit>> {
    let n = devices.len() as u64;
    if n == 0 || devices[0] != 0 {
        return None;
    }
    let mut out = Vec::new();
    let mut block = 1u64;
    while block < n {
        let limit = cuts
            .iter()
            .copied()
            .filter(|&c| c > block && c % block == 0)
            .min()
            .unwrap_or(n);
        let stride = devices[block as usize] as u64;
        if stride == 0 {
            return None;
        }
        let mut m = 1u64;
        while block * m < limit && devices[(block * m) as usize] as u64 == m * stride {
            m += 1;
        }
        // The run may stop between divisors of `limit`: shrink it to one.
        while (limit / block) % m != 0 {
            m -= 1;
        }
        if m < 2 {
            return None;
        }
        out.push(Digit { size: m, stride });
        block *= m;
    }
    // Check every position against the digits.
    for (i, &d) in devices.iter().enumerate() {
        let mut rest = i as u64;
        let mut id = 0u64;
        for dg in &out {
            id += (rest % dg.size) * dg.stride;
            rest /= dg.size;
        }
        if id != d as u64 {
            return None;
        }
    }
    Some(out)
}

/// The canonical iota form of a device list, as XLA prints it (size-1 dims dropped, adjacent
/// dims that stay adjacent merged), or `None` if the list is not a transposed iota.
pub fn detect_iota(devices: &[u32]) -> Option<TileDevices> {
    let ds = digits(devices, &[])?;
    // Source dims, major first, are the digits sorted by stride descending; they must tile 0..n.
    let mut by_stride: Vec<(usize, Digit)> = ds.iter().copied().enumerate().collect();
    by_stride.sort_by_key(|d| std::cmp::Reverse(d.1.stride));
    let mut expect = 1u64;
    for (_, dg) in by_stride.iter().rev() {
        if dg.stride != expect {
            return None;
        }
        expect *= dg.size;
    }
    let reshape: Vec<u64> = by_stride.iter().map(|(_, d)| d.size).collect();
    // Output order is outermost digit first: the last digit found.
    let perm: Vec<usize> = (0..ds.len())
        .rev()
        .map(|k| {
            by_stride
                .iter()
                .position(|(i, _)| *i == k)
                .expect("invariant: every digit is in by_stride")
        })
        .collect();
    Some(canonical_iota(&reshape, &perm))
}

/// Drops size-1 dims and merges source dims that stay adjacent after the transpose.
pub(crate) fn canonical_iota(reshape: &[u64], perm: &[usize]) -> TileDevices {
    let keep: Vec<usize> = (0..reshape.len()).filter(|&k| reshape[k] > 1).collect();
    let remap = |p: usize| keep.iter().position(|&k| k == p);
    let mut r: Vec<u64> = keep.iter().map(|&k| reshape[k]).collect();
    let mut p: Vec<usize> = perm.iter().filter_map(|&q| remap(q)).collect();
    // Merge perm[i], perm[i+1] when perm[i+1] == perm[i] + 1.
    let mut i = 0;
    while i + 1 < p.len() {
        if p[i + 1] == p[i] + 1 {
            let a = p[i];
            r[a] *= r[a + 1];
            r.remove(a + 1);
            p.remove(i + 1);
            for q in p.iter_mut() {
                if *q > a {
                    *q -= 1;
                }
            }
        } else {
            i += 1;
        }
    }
    if r.is_empty() {
        r.push(1);
        p.push(0);
    }
    if p.iter().enumerate().all(|(i, &q)| i == q) {
        let n = r.iter().product();
        return TileDevices::Iota {
            reshape: vec![n],
            perm: vec![0],
        };
    }
    TileDevices::Iota {
        reshape: r,
        perm: p,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iota_expands_with_transpose() {
        let t = TileDevices::Iota {
            reshape: vec![2, 4],
            perm: vec![1, 0],
        };
        assert_eq!(t.expand(), vec![0, 4, 1, 5, 2, 6, 3, 7]);
        assert_eq!(t.to_string(), "<=[2,4]T(1,0)");
    }

    #[test]
    fn detection_finds_the_canonical_iota() {
        assert_eq!(
            detect_iota(&[0, 4, 1, 5, 2, 6, 3, 7]).unwrap().to_string(),
            "<=[2,4]T(1,0)"
        );
        assert_eq!(detect_iota(&[0, 1, 2, 3]).unwrap().to_string(), "<=[4]");
        let t = TileDevices::Iota {
            reshape: vec![2, 2, 2],
            perm: vec![0, 2, 1],
        };
        assert_eq!(detect_iota(&t.expand()).unwrap(), t);
        assert_eq!(detect_iota(&[1, 2, 3]), None);
        assert_eq!(detect_iota(&[0, 3, 1, 2]), None);
    }
}
