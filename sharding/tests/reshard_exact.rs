//! Resharding, checked by execution: for every pair of shardings of a 2-D tensor on a 2×2 and a
//! 2×4 mesh (pending sums included, as sources and as targets), the planned steps, applied by a
//! small simulated mesh (one local array per device, each collective applied over its device
//! groups), turn the source layout into the target layout exactly, and send no more bytes per
//! device than the cheapest sequence of the same collectives (Dijkstra over all layouts, with a
//! collective-permute allowed between any two layouts of equal shard counts).

use shardc_ir::{DType, DimSharding, Mesh, ReduceFn, Sharding, TensorType};
use shardc_sharding::{reshard, ReshardKind};

/// A dense integer array (exact sums), row-major.
#[derive(Clone, Debug, PartialEq)]
struct Array {
    shape: Vec<usize>,
    data: Vec<i64>,
}

impl Array {
    fn from_fn(shape: &[usize], f: impl Fn(&[usize]) -> i64) -> Self {
        let n: usize = shape.iter().product();
        let data = (0..n).map(|i| f(&unravel(i, shape))).collect();
        Array {
            shape: shape.to_vec(),
            data,
        }
    }

    fn at(&self, idx: &[usize]) -> i64 {
        self.data[ravel(idx, &self.shape)]
    }

    /// Chunk `k` of `n` equal chunks along `dim`.
    fn chunk(&self, dim: usize, k: usize, n: usize) -> Array {
        assert_eq!(self.shape[dim] % n, 0, "uneven chunking in the simulator");
        let len = self.shape[dim] / n;
        let mut shape = self.shape.clone();
        shape[dim] = len;
        Array::from_fn(&shape, |idx| {
            let mut j = idx.to_vec();
            j[dim] += k * len;
            self.at(&j)
        })
    }

    fn concat(parts: &[Array], dim: usize) -> Array {
        let len = parts[0].shape[dim];
        let mut shape = parts[0].shape.clone();
        shape[dim] = len * parts.len();
        Array::from_fn(&shape, |idx| {
            let mut j = idx.to_vec();
            j[dim] %= len;
            parts[idx[dim] / len].at(&j)
        })
    }

    fn add(&self, o: &Array) -> Array {
        assert_eq!(self.shape, o.shape);
        Array {
            shape: self.shape.clone(),
            data: self.data.iter().zip(&o.data).map(|(a, b)| a + b).collect(),
        }
    }

    fn zeros_like(&self) -> Array {
        Array {
            shape: self.shape.clone(),
            data: vec![0; self.data.len()],
        }
    }
}

fn unravel(mut i: usize, shape: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for d in (0..shape.len()).rev() {
        idx[d] = i % shape[d];
        i /= shape[d];
    }
    idx
}

fn ravel(idx: &[usize], shape: &[usize]) -> usize {
    idx.iter().zip(shape).fold(0, |acc, (&i, &s)| acc * s + i)
}

fn size(mesh: &Mesh, axes: &[String]) -> usize {
    axes.iter()
        .map(|a| mesh.axis_size(a).unwrap() as usize)
        .product()
}

/// Devices sharing `i`'s coordinates off `axes`, ordered by their index along `axes`.
fn group(mesh: &Mesh, i: usize, axes: &[String]) -> Vec<usize> {
    let ci = mesh.coords(i);
    let along: Vec<usize> = axes.iter().map(|a| mesh.axis_index(a).unwrap()).collect();
    let mut g: Vec<usize> = (0..mesh.num_devices() as usize)
        .filter(|&j| {
            let cj = mesh.coords(j);
            (0..ci.len()).all(|k| along.contains(&k) || ci[k] == cj[k])
        })
        .collect();
    g.sort_by_key(|&j| mesh.linear_index(j, axes));
    g
}

/// The per-device arrays of `global` laid out as `s`; a pending sum is split into summands
/// that differ per device and add up to the value.
fn layout(global: &Array, s: &Sharding, mesh: &Mesh) -> Vec<Array> {
    let n = mesh.num_devices() as usize;
    let parts = size(mesh, &s.partial);
    (0..n)
        .map(|i| {
            let g = mesh.linear_index(i, &s.partial) as usize;
            let noise = |idx: &[usize], g: usize| {
                ((ravel(idx, &global.shape) * 7 + g * 13) % 11) as i64 - 5
            };
            let summand = Array::from_fn(&global.shape, |idx| {
                if g == 0 {
                    global.at(idx) - (1..parts).map(|h| noise(idx, h)).sum::<i64>()
                } else {
                    noise(idx, g)
                }
            });
            shard_dims(&summand, s, mesh, i)
        })
        .collect()
}

fn shard_dims(a: &Array, s: &Sharding, mesh: &Mesh, i: usize) -> Array {
    let mut local = a.clone();
    for (d, ds) in s.dims.iter().enumerate() {
        let k = mesh.linear_index(i, &ds.axes) as usize;
        local = local.chunk(d, k, size(mesh, &ds.axes));
    }
    local
}

fn sum_over(locals: &[Array], members: &[usize]) -> Array {
    members
        .iter()
        .skip(1)
        .fold(locals[members[0]].clone(), |acc, &j| acc.add(&locals[j]))
}

/// Applies one step to every device, by the collective's own semantics.
fn execute(kind: &ReshardKind, locals: &[Array], mesh: &Mesh) -> Vec<Array> {
    (0..locals.len())
        .map(|i| match kind {
            ReshardKind::AllGather { dim, axes } => {
                let parts: Vec<Array> = group(mesh, i, axes)
                    .iter()
                    .map(|&j| locals[j].clone())
                    .collect();
                Array::concat(&parts, *dim)
            }
            ReshardKind::ReduceScatter { dim, axes, .. } => {
                let g = group(mesh, i, axes);
                let k = mesh.linear_index(i, axes) as usize;
                sum_over(locals, &g).chunk(*dim, k, g.len())
            }
            ReshardKind::AllReduce { axes, .. } => sum_over(locals, &group(mesh, i, axes)),
            ReshardKind::AllToAll {
                split_dim,
                concat_dim,
                axes,
            } => {
                let g = group(mesh, i, axes);
                let k = mesh.linear_index(i, axes) as usize;
                let parts: Vec<Array> = g
                    .iter()
                    .map(|&j| locals[j].chunk(*split_dim, k, g.len()))
                    .collect();
                Array::concat(&parts, *concat_dim)
            }
            ReshardKind::CollectivePermute { axes, pairs } => {
                let me = mesh.linear_index(i, axes);
                match pairs.iter().find(|p| p.1 == me) {
                    Some(&(src, _)) => locals[group(mesh, i, axes)[src as usize]].clone(),
                    None => locals[i].zeros_like(),
                }
            }
            ReshardKind::LocalSlice { dim, axes } => {
                let k = mesh.linear_index(i, axes) as usize;
                locals[i].chunk(*dim, k, size(mesh, axes))
            }
            ReshardKind::MakePartial { axes } => {
                if mesh.linear_index(i, axes) == 0 {
                    locals[i].clone()
                } else {
                    locals[i].zeros_like()
                }
            }
        })
        .collect()
}

/// Every sharding of a rank-2 tensor over `axes`: each axis on dim 0, dim 1, pending, or unused,
/// in every order within a dim.
fn all_shardings(axes: &[&str]) -> Vec<Sharding> {
    let mut out = Vec::new();
    let slots = 4usize.pow(axes.len() as u32);
    for code in 0..slots {
        let mut dims: Vec<Vec<String>> = vec![Vec::new(); 2];
        let mut partial = Vec::new();
        let mut c = code;
        for a in axes {
            match c % 4 {
                0 | 1 => dims[c % 4].push(a.to_string()),
                2 => partial.push(a.to_string()),
                _ => {}
            }
            c /= 4;
        }
        for d0 in permutations(&dims[0]) {
            for d1 in permutations(&dims[1]) {
                out.push(Sharding {
                    dims: vec![
                        DimSharding {
                            axes: d0.clone(),
                            open: false,
                        },
                        DimSharding {
                            axes: d1,
                            open: false,
                        },
                    ],
                    partial: partial.clone(),
                    partial_fn: ReduceFn::Sum,
                });
            }
        }
    }
    out
}

fn permutations(v: &[String]) -> Vec<Vec<String>> {
    if v.len() <= 1 {
        return vec![v.to_vec()];
    }
    let mut out = Vec::new();
    for i in 0..v.len() {
        let mut rest = v.to_vec();
        let x = rest.remove(i);
        for mut p in permutations(&rest) {
            p.insert(0, x.clone());
            out.push(p);
        }
    }
    out
}

/// Bytes per device of the cheapest sequence of the collectives `reshard` knows (gather,
/// all-to-all, reduce-scatter, all-reduce, permute, and the free local slice and pending
/// split) from `from` to every sharding of `all`: Dijkstra over the layouts.
fn cheapest(from: &Sharding, to: &Sharding, all: &[Sharding], ty: &TensorType, mesh: &Mesh) -> u64 {
    let involved =
        |x: &String| from.used_axes().contains(&x.as_str()) || to.used_axes().contains(&x.as_str());
    let key = |s: &Sharding| {
        let mut p = s.partial.clone();
        p.sort();
        (s.dims.iter().map(|d| d.axes.clone()).collect::<Vec<_>>(), p)
    };
    let keys: Vec<_> = all.iter().map(key).collect();
    let n_of = |axes: &[String]| size(mesh, axes) as u64;
    // Only the axes the source or the target uses take part (see `reshard`).
    // The cost of one step from `a` to `b`, if one step does it.
    let step = |a: &Sharding, b: &Sharding| -> Option<u64> {
        let (da, pa) = key(a);
        let (db, pb) = key(b);
        let l = shardc_sharding::local_type(a, ty, mesh).size_bytes();
        let changed: Vec<usize> = (0..da.len()).filter(|&d| da[d] != db[d]).collect();
        let mut best: Option<u64> = None;
        let mut offer = |c: u64| best = Some(best.map_or(c, |b: u64| b.min(c)));
        let unused =
            |x: &String| !da.iter().flatten().any(|y| y == x) && !pa.contains(x) && involved(x);
        if pa == pb {
            // Per-dim shard counts kept: one permute (among the involved axes).
            if (0..da.len()).all(|d| n_of(&da[d]) == n_of(&db[d]))
                && !changed.is_empty()
                && db
                    .iter()
                    .flatten()
                    .all(|x| involved(x) || da.iter().flatten().any(|y| y == x))
            {
                offer(l);
            }
            if let [d] = changed[..] {
                if db[d].len() > da[d].len() && db[d].starts_with(&da[d]) {
                    if db[d][da[d].len()..].iter().all(unused) {
                        offer(0); // local slice
                    }
                } else if da[d].starts_with(&db[d]) {
                    offer((n_of(&da[d][db[d].len()..]) - 1) * l); // all-gather
                }
            }
            if let [i, j] = changed[..] {
                for (i, j) in [(i, j), (j, i)] {
                    if da[i].starts_with(&db[i]) && db[j].starts_with(&da[j]) {
                        let moved = &da[i][db[i].len()..];
                        if moved == &db[j][da[j].len()..] {
                            let n = n_of(moved);
                            offer(l / n * (n - 1)); // all-to-all
                        }
                    }
                }
            }
        }
        let removed: Vec<&String> = pa.iter().filter(|x| !pb.contains(x)).collect();
        let added: Vec<&String> = pb.iter().filter(|x| !pa.contains(x)).collect();
        if !removed.is_empty() && added.is_empty() && a.partial_fn == b.partial_fn {
            let axes: Vec<String> = removed.iter().map(|x| x.to_string()).collect();
            let n = n_of(&axes);
            if changed.is_empty() {
                offer(2 * (l / n * (n - 1))); // all-reduce
            }
            if let [d] = changed[..] {
                let tail = &db[d][da[d].len().min(db[d].len())..];
                if db[d].starts_with(&da[d])
                    && tail.len() == axes.len()
                    && tail.iter().all(|x| axes.contains(x))
                {
                    offer(l / n * (n - 1)); // reduce-scatter
                }
            }
        }
        if removed.is_empty()
            && !added.is_empty()
            && changed.is_empty()
            && added.iter().all(|x| unused(x))
        {
            offer(0); // a new pending split
        }
        best
    };
    let start = keys
        .iter()
        .position(|k| *k == key(from))
        .expect("from is listed");
    let mut dist = vec![u64::MAX; all.len()];
    let mut done = vec![false; all.len()];
    dist[start] = 0;
    while let Some(u) = (0..all.len())
        .filter(|&u| !done[u] && dist[u] < u64::MAX)
        .min_by_key(|&u| dist[u])
    {
        done[u] = true;
        for v in 0..all.len() {
            if let Some(c) = step(&all[u], &all[v]) {
                dist[v] = dist[v].min(dist[u] + c);
            }
        }
    }
    let end = keys
        .iter()
        .position(|k| *k == key(to))
        .expect("to is listed");
    dist[end]
}

fn check_every_pair(mesh: &Mesh, shape: [usize; 2]) -> usize {
    let global = Array::from_fn(&shape, |idx| (idx[0] * 31 + idx[1] * 7) as i64 % 97 - 40);
    let ty = TensorType::new(
        DType::F32,
        shape.iter().map(|&d| d as u64).collect::<Vec<_>>(),
    );
    let names = mesh.axis_names();
    let all = all_shardings(&names);
    let mut pairs = 0;
    for from in &all {
        for to in &all {
            let best = cheapest(from, to, &all, &ty, mesh);
            let steps = reshard(from, to, &ty, mesh).unwrap();
            let bytes: u64 = steps.iter().map(|s| s.bytes_per_device).sum();
            assert!(bytes >= best, "{from:?} -> {to:?}: below the optimum?");
            assert!(
                bytes <= best,
                "{from:?} -> {to:?}: {bytes} bytes, {} possible",
                best
            );
            let mut locals = layout(&global, from, mesh);
            for s in &steps {
                let dims: Vec<u64> = locals[0].shape.iter().map(|&d| d as u64).collect();
                assert_eq!(
                    s.local_operand.dims(),
                    &dims[..],
                    "{from:?} -> {to:?}: step {s:?}"
                );
                locals = execute(&s.kind, &locals, mesh);
            }
            let plain = Sharding {
                partial: Vec::new(),
                ..to.clone()
            };
            for i in 0..locals.len() {
                let members = group(mesh, i, &to.partial);
                let expect = shard_dims(&global, &plain, mesh, i);
                assert_eq!(
                    sum_over(&locals, &members),
                    expect,
                    "device {i}: {from:?} -> {to:?} via {:?}",
                    steps.iter().map(|s| s.kind.to_string()).collect::<Vec<_>>()
                );
            }
            if to.partial.is_empty() {
                assert_eq!(locals, layout(&global, to, mesh), "{from:?} -> {to:?}");
            }
            pairs += 1;
        }
    }
    pairs
}

#[test]
fn every_pair_of_shardings_reshards_exactly_on_a_2x2_mesh() {
    let mesh: Mesh = "a=2,b=2".parse().unwrap();
    assert_eq!(check_every_pair(&mesh, [8, 8]), 18 * 18);
}

#[test]
fn every_pair_of_shardings_reshards_exactly_on_a_2x4_mesh() {
    let mesh: Mesh = "a=2,b=4".parse().unwrap();
    assert_eq!(check_every_pair(&mesh, [16, 16]), 18 * 18);
}

fn kinds(from: &Sharding, to: &Sharding, mesh: &Mesh) -> Vec<(String, u64)> {
    let ty = TensorType::new(DType::F32, vec![16, 16]);
    reshard(from, to, &ty, mesh)
        .unwrap()
        .into_iter()
        .map(|s| (s.kind.to_string(), s.bytes_per_device))
        .collect()
}

#[test]
fn moving_an_axis_between_dims_is_one_all_to_all() {
    let mesh: Mesh = "a=2,b=4".parse().unwrap();
    let k = kinds(
        &Sharding::from_dims(&[&["b"], &[]]),
        &Sharding::from_dims(&[&[], &["b"]]),
        &mesh,
    );
    // Local operand f32[4,16] = 256 bytes; 3/4 of it leaves each device (a gather then a slice
    // would receive 3 × 256).
    assert_eq!(
        k,
        vec![("all_to_all(split=1, concat=0, b)".to_string(), 192)]
    );
}

#[test]
fn pending_sum_into_a_sharded_dim_is_a_reduce_scatter() {
    let mesh: Mesh = "a=2,b=4".parse().unwrap();
    let from = Sharding {
        partial: vec!["b".into()],
        ..Sharding::replicated(2)
    };
    // Only `b` takes part: the spare `a` is not used to split the work across replicas.
    let k = kinds(&from, &Sharding::from_dims(&[&["b"], &[]]), &mesh);
    assert_eq!(k, vec![("reduce_scatter(dim=0, b, sum)".to_string(), 768)]);
    let k = kinds(&from, &Sharding::replicated(2), &mesh);
    assert_eq!(k, vec![("all_reduce(b, sum)".to_string(), 1536)]);
}

#[test]
fn swapping_the_axes_of_a_dim_is_one_collective_permute() {
    let mesh: Mesh = "a=2,b=2".parse().unwrap();
    let k = kinds(
        &Sharding::from_dims(&[&["a", "b"], &[]]),
        &Sharding::from_dims(&[&["b", "a"], &[]]),
        &mesh,
    );
    // Local f32[4,16] = 256 bytes: devices (0,1) and (1,0) swap blocks; a gather would move 768.
    assert_eq!(
        k,
        vec![(
            "collective_permute(a,b, [(0, 0), (2, 1), (1, 2), (3, 3)])".to_string(),
            256
        )]
    );
}

#[test]
fn finer_sharding_is_a_free_local_slice_and_coarser_an_all_gather() {
    let mesh: Mesh = "a=2,b=4".parse().unwrap();
    let coarse = Sharding::from_dims(&[&["a"], &[]]);
    let fine = Sharding::from_dims(&[&["a", "b"], &[]]);
    assert_eq!(
        kinds(&coarse, &fine, &mesh),
        vec![("local_slice(dim=0, b)".to_string(), 0)]
    );
    // Local f32[2,16] = 128 bytes, 3 peers' worth arrives.
    assert_eq!(
        kinds(&fine, &coarse, &mesh),
        vec![("all_gather(dim=0, b)".to_string(), 384)]
    );
}
