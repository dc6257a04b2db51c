//! Resharding: the collectives that turn a value of one sharding into another on the same mesh.
//!
//! The plan is built greedily, shrinking before growing so that each collective moves as few
//! bytes as it can: first local slices (free), reduce-scatters (a pending sum straight into a
//! sharded dim), all-to-alls (an axis moving between dims without ever holding more data), then
//! all-reduces of what is still pending, then all-gathers, and last any new pending sums.
//! Bytes are counted per device as a bandwidth-optimal algorithm sends them (REFERENCES.md:
//! all-gather `(n-1)·L`, reduce-scatter and all-to-all `(n-1)/n·L`, all-reduce `2(n-1)/n·L` for a
//! local operand of `L` bytes over `n` devices).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Serialize;
use shardc_ir::{DimSharding, Mesh, Op, ReduceFn, Sharding, TensorType};

use crate::error::{Result, ShardingError};

/// What one resharding step does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ReshardKind {
    /// Concatenate the shards of `axes` along `dim`.
    AllGather { dim: usize, axes: Vec<String> },
    /// Reduce the pending sum over `axes`, each device keeping its shard of `dim`.
    ReduceScatter {
        dim: usize,
        axes: Vec<String>,
        func: ReduceFn,
    },
    /// Reduce the pending sum over `axes`.
    AllReduce { axes: Vec<String>, func: ReduceFn },
    /// Move `axes` from sharding `concat_dim` to sharding `split_dim`.
    AllToAll {
        split_dim: usize,
        concat_dim: usize,
        axes: Vec<String>,
    },
    /// Send each device's block to the device that needs it: within each group along `axes`,
    /// linear coordinate `s` sends to `t` for each pair `(s, t)` (`s == t` stays put).
    CollectivePermute {
        axes: Vec<String>,
        pairs: Vec<(u64, u64)>,
    },
    /// Keep this device's part of `dim` along `axes` (no communication).
    LocalSlice { dim: usize, axes: Vec<String> },
    /// Become a pending sum over `axes`: the device at coordinate 0 of `axes` keeps the value,
    /// the others hold zeros (no communication).
    MakePartial { axes: Vec<String> },
}

/// One step of a resharding, with what it costs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReshardStep {
    pub kind: ReshardKind,
    /// The per-device operand the step starts from.
    pub local_operand: TensorType,
    /// Bytes each device sends.
    pub bytes_per_device: u64,
    /// The sharding after the step.
    pub after: Sharding,
}

impl ReshardStep {
    /// The step as an `ir` collective op, as the cost model prices it (`None` for the local steps).
    pub fn collective(&self) -> Option<Op> {
        Some(match self.kind.clone() {
            ReshardKind::AllGather { dim, axes } => Op::AllGather { dim, axes },
            ReshardKind::ReduceScatter { dim, axes, func } => Op::ReduceScatter { dim, axes, func },
            ReshardKind::AllReduce { axes, func } => Op::AllReduce { axes, func },
            ReshardKind::AllToAll {
                split_dim,
                concat_dim,
                axes,
            } => Op::AllToAll {
                split_dim,
                concat_dim,
                axes,
            },
            ReshardKind::CollectivePermute { axes, pairs } => Op::CollectivePermute { axes, pairs },
            ReshardKind::LocalSlice { .. } | ReshardKind::MakePartial { .. } => return None,
        })
    }
}

impl fmt::Display for ReshardKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let j = |a: &[String]| a.join(",");
        match self {
            ReshardKind::AllGather { dim, axes } => write!(f, "all_gather(dim={dim}, {})", j(axes)),
            ReshardKind::ReduceScatter { dim, axes, func } => {
                write!(f, "reduce_scatter(dim={dim}, {}, {})", j(axes), func.name())
            }
            ReshardKind::AllReduce { axes, func } => {
                write!(f, "all_reduce({}, {})", j(axes), func.name())
            }
            ReshardKind::AllToAll {
                split_dim,
                concat_dim,
                axes,
            } => write!(
                f,
                "all_to_all(split={split_dim}, concat={concat_dim}, {})",
                j(axes)
            ),
            ReshardKind::CollectivePermute { axes, pairs } => {
                write!(f, "collective_permute({}, {pairs:?})", j(axes))
            }
            ReshardKind::LocalSlice { dim, axes } => {
                write!(f, "local_slice(dim={dim}, {})", j(axes))
            }
            ReshardKind::MakePartial { axes } => write!(f, "make_partial({})", j(axes)),
        }
    }
}

fn axes_size(mesh: &Mesh, axes: &[String]) -> u64 {
    axes.iter()
        .map(|a| mesh.axis_size(a).unwrap_or(1))
        .product()
}

/// The per-device type of a value of `global` type under `s`.
pub fn local_type(s: &Sharding, global: &TensorType, mesh: &Mesh) -> TensorType {
    let dims = global
        .dims()
        .iter()
        .enumerate()
        .map(|(d, &n)| s.local_dim(mesh, d, n))
        .collect::<Vec<_>>();
    TensorType::new(global.dtype, dims)
}

fn is_prefix(a: &[String], b: &[String]) -> bool {
    a.len() <= b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}

/// Whether two shardings place data the same way (open flags aside; pending axes as a set).
pub fn same_layout(a: &Sharding, b: &Sharding) -> bool {
    let set = |s: &Sharding| s.partial.iter().cloned().collect::<BTreeSet<_>>();
    a.rank() == b.rank()
        && a.dims.iter().zip(&b.dims).all(|(x, y)| x.axes == y.axes)
        && set(a) == set(b)
        && (a.partial.is_empty() || a.partial_fn == b.partial_fn)
}

/// The collectives turning a value of `global` type sharded as `from` into `to` on `mesh`.
pub fn reshard(
    from: &Sharding,
    to: &Sharding,
    global: &TensorType,
    mesh: &Mesh,
) -> Result<Vec<ReshardStep>> {
    steps(from, to, global, mesh, true)
}

/// [`reshard`] with each collective-permute's pairs left empty: to price the steps, not to run
/// them.
pub(crate) fn reshard_unpaired(
    from: &Sharding,
    to: &Sharding,
    global: &TensorType,
    mesh: &Mesh,
) -> Result<Vec<ReshardStep>> {
    steps(from, to, global, mesh, false)
}

fn steps(
    from: &Sharding,
    to: &Sharding,
    global: &TensorType,
    mesh: &Mesh,
    paired: bool,
) -> Result<Vec<ReshardStep>> {
    let invalid = |which: &str, m: String| ShardingError::Invalid {
        value: format!("reshard {which}"),
        message: m,
    };
    from.validate(mesh, global.rank())
        .map_err(|m| invalid("source", m))?;
    to.validate(mesh, global.rank())
        .map_err(|m| invalid("target", m))?;
    if !from.partial.is_empty() && !to.partial.is_empty() && from.partial_fn != to.partial_fn {
        return Err(invalid(
            "target",
            format!(
                "pending {} cannot become pending {}",
                from.partial_fn.name(),
                to.partial_fn.name()
            ),
        ));
    }
    if same_layout(from, to) {
        return Ok(Vec::new());
    }
    let cur = Sharding {
        dims: from
            .dims
            .iter()
            .map(|d| DimSharding::on(&d.axes.iter().map(String::as_str).collect::<Vec<_>>()))
            .collect(),
        partial: from.partial.clone(),
        partial_fn: from.partial_fn,
    };
    let mut plan = match crate::reshard_search::cheapest(&cur, to, global, mesh) {
        Some(plan) => plan,
        None => {
            let greedy = greedy(cur.clone(), to, global, mesh);
            // Where every dim keeps its number of shards, one collective-permute moves each
            // block straight to its new owner: one block per device, less than any
            // gather-then-slice.
            match permute_unpaired(&cur, to, global, mesh) {
                Some(step) if step.bytes_per_device < bytes(&greedy) => vec![step],
                _ => greedy,
            }
        }
    };
    // Plans are chosen by bytes, which a permute's pairs do not change: the pairs are made
    // for the chosen plan only, and only to run it.
    if paired {
        let mut before = cur;
        for step in &mut plan {
            if let ReshardKind::CollectivePermute { axes, pairs } = &mut step.kind {
                *pairs = permute_pairs(&before, &step.after, axes, mesh).ok_or_else(|| {
                    invalid(
                        "target",
                        format!(
                            "no device pairs for the collective-permute from {before:?} to {:?}",
                            step.after
                        ),
                    )
                })?;
            }
            before = step.after.clone();
        }
    }
    Ok(plan)
}

fn bytes(s: &[ReshardStep]) -> u64 {
    s.iter().map(|x| x.bytes_per_device).sum()
}

/// Steps chosen one at a time by [`next_step`].
fn greedy(mut cur: Sharding, to: &Sharding, global: &TensorType, mesh: &Mesh) -> Vec<ReshardStep> {
    let mut steps = Vec::new();
    // Each step places an axis where the target wants it or removes a misplaced one, so the
    // loop ends within a few steps per axis; the bound only guards that argument.
    for _ in 0..4 * (mesh.axes.len() + 1) * (global.rank() + 1) {
        if same_layout(&cur, to) {
            return steps;
        }
        let kind = next_step(&cur, to);
        let local = local_type(&cur, global, mesh);
        let bytes = step_bytes(&kind, local.size_bytes(), mesh);
        apply(&mut cur, &kind, to);
        steps.push(ReshardStep {
            kind,
            local_operand: local,
            bytes_per_device: bytes,
            after: cur.clone(),
        });
    }
    unreachable!("invariant: resharding to {to:?} did not converge")
}

/// Bytes each device sends in one step from a local operand of `l` bytes (ring algorithms; a
/// permute sends the whole block).
pub(crate) fn step_bytes(kind: &ReshardKind, l: u64, mesh: &Mesh) -> u64 {
    match kind {
        ReshardKind::AllGather { axes, .. } => (axes_size(mesh, axes) - 1).saturating_mul(l),
        ReshardKind::ReduceScatter { axes, .. } | ReshardKind::AllToAll { axes, .. } => {
            let n = axes_size(mesh, axes);
            l / n * (n - 1)
        }
        ReshardKind::AllReduce { axes, .. } => {
            let n = axes_size(mesh, axes);
            2 * (l / n * (n - 1))
        }
        ReshardKind::CollectivePermute { pairs, .. } => {
            if pairs.iter().any(|(s, t)| s != t) {
                l
            } else {
                0
            }
        }
        ReshardKind::LocalSlice { .. } | ReshardKind::MakePartial { .. } => 0,
    }
}

/// One collective-permute from `cur` to `to`, if that is all it takes: the same pending sum and
/// the same number of shards in every dim, so each device's block is whole on some device. Its
/// source-target pairs are left empty (what a permute sends does not depend on them; `steps`
/// makes them for a plan that runs). Whenever the two layouts differ in axes of size above 1 and keep
/// every dim's shard count, some device's block changes owner, and every block is held by as many devices under `cur`
/// as want it under `to` (each dim's shard index is a mixed-radix number over the same
/// involved axes' coordinates), so [`permute_pairs`] always finds the pairs.
pub(crate) fn permute_unpaired(
    cur: &Sharding,
    to: &Sharding,
    global: &TensorType,
    mesh: &Mesh,
) -> Option<ReshardStep> {
    let pending = |s: &Sharding| s.partial.iter().cloned().collect::<BTreeSet<_>>();
    if same_layout(cur, to)
        || pending(cur) != pending(to)
        || (!cur.partial.is_empty() && cur.partial_fn != to.partial_fn)
        || (0..cur.rank()).any(|d| cur.shards_of_dim(mesh, d) != to.shards_of_dim(mesh, d))
    {
        return None;
    }
    // The axes that split a dim in either layout, in mesh order; the permutation is the same in
    // every group of devices that differ only along the others.
    let involved: BTreeSet<&str> = used(cur).union(&used(to)).copied().collect();
    let axes: Vec<String> = mesh
        .axis_names()
        .into_iter()
        .filter(|a| involved.contains(a) && !cur.partial.iter().any(|p| p == a))
        .map(String::from)
        .collect();
    let local = local_type(cur, global, mesh);
    // Layouts that differ only by axes of size 1 hold the same blocks on the same devices.
    let real = |s: &Sharding| -> Vec<Vec<String>> {
        let keep = |a: &&String| mesh.axis_size(a).unwrap_or(1) > 1;
        s.dims
            .iter()
            .map(|d| d.axes.iter().filter(keep).cloned().collect())
            .collect()
    };
    let moves = real(cur) != real(to);
    Some(ReshardStep {
        kind: ReshardKind::CollectivePermute {
            axes,
            pairs: Vec::new(),
        },
        bytes_per_device: if moves { local.size_bytes() } else { 0 },
        local_operand: local,
        after: Sharding {
            dims: to
                .dims
                .iter()
                .map(|d| DimSharding::on(&d.axes.iter().map(String::as_str).collect::<Vec<_>>()))
                .collect(),
            partial: cur.partial.clone(),
            partial_fn: cur.partial_fn,
        },
    })
}

/// The (source, target) pairs of the permute from `cur` to `to` over `axes` (coordinates along
/// `axes`, sorted by target).
pub(crate) fn permute_pairs(
    cur: &Sharding,
    to: &Sharding,
    axes: &[String],
    mesh: &Mesh,
) -> Option<Vec<(u64, u64)>> {
    // The devices of group 0: every other axis at coordinate 0, ordered by linear coordinate
    // (built from the involved axes' coordinates alone: on a thousand devices the planner asks
    // for many permutes, and walking every device for each was most of its time).
    let mut group: Vec<usize> = vec![0];
    for a in &mesh.axes {
        let size = a.size as usize;
        group = if axes.contains(&a.name) {
            group
                .iter()
                .flat_map(|&g| (0..size).map(move |x| g * size + x))
                .collect()
        } else {
            group.iter().map(|&g| g * size).collect()
        };
    }
    let coords: BTreeMap<usize, Vec<u64>> = group.iter().map(|&i| (i, mesh.coords(i))).collect();
    let along = |i: usize, on: &[String]| -> u64 {
        let c = &coords[&i];
        on.iter().fold(0, |acc, a| {
            let k = mesh.axis_index(a).unwrap_or(0);
            acc * mesh.axes[k].size + c[k]
        })
    };
    let coord = |i: usize| along(i, &axes);
    // The block of the value device `i` holds under `s`: per dim, its shard index.
    let block =
        |s: &Sharding, i: usize| -> Vec<u64> { s.dims.iter().map(|d| along(i, &d.axes)).collect() };
    // Receivers that already hold their block keep it; the others take the holders left over,
    // in order.
    let mut holders: BTreeMap<Vec<u64>, Vec<usize>> = BTreeMap::new();
    for &i in &group {
        holders.entry(block(cur, i)).or_default().push(i);
    }
    let mut pairs = Vec::new();
    let mut waiting = Vec::new();
    for &i in &group {
        let want = block(to, i);
        let hs = holders.get_mut(&want)?;
        if let Some(k) = hs.iter().position(|&h| h == i) {
            hs.remove(k);
            pairs.push((coord(i), coord(i)));
        } else {
            waiting.push((i, want));
        }
    }
    for (i, want) in waiting {
        let hs = holders.get_mut(&want)?;
        if hs.is_empty() {
            return None;
        }
        let h = hs.remove(0);
        pairs.push((coord(h), coord(i)));
    }
    pairs.sort_unstable_by_key(|&(_, t)| t);
    Some(pairs)
}

pub(crate) fn used(s: &Sharding) -> BTreeSet<&str> {
    s.used_axes().into_iter().collect()
}

/// The next step from `cur` towards `to` (they differ).
fn next_step(cur: &Sharding, to: &Sharding) -> ReshardKind {
    let rank = cur.rank();
    let prefix_ok = |d: usize| is_prefix(&cur.dims[d].axes, &to.dims[d].axes);
    let next_axes = |d: usize| &to.dims[d].axes[cur.dims[d].axes.len()..];
    let busy = used(cur);
    // 1. Local slices: the next axes a dim wants that no one uses.
    for d in (0..rank).filter(|&d| prefix_ok(d)) {
        let axes: Vec<String> = next_axes(d)
            .iter()
            .take_while(|a| !busy.contains(a.as_str()))
            .cloned()
            .collect();
        if !axes.is_empty() {
            return ReshardKind::LocalSlice { dim: d, axes };
        }
    }
    // 2. Reduce-scatters: pending axes a dim wants next.
    let pending: BTreeSet<&str> = cur
        .partial
        .iter()
        .filter(|a| !to.partial.contains(a))
        .map(String::as_str)
        .collect();
    for d in (0..rank).filter(|&d| prefix_ok(d)) {
        let axes: Vec<String> = next_axes(d)
            .iter()
            .take_while(|a| pending.contains(a.as_str()))
            .cloned()
            .collect();
        if !axes.is_empty() {
            return ReshardKind::ReduceScatter {
                dim: d,
                axes,
                func: cur.partial_fn,
            };
        }
    }
    // 3. All-to-alls: a misplaced minor axis that another dim wants next.
    let wanted_next = |a: &str, not: usize| {
        (0..rank).find(|&j| {
            j != not && prefix_ok(j) && next_axes(j).first().map(String::as_str) == Some(a)
        })
    };
    for i in (0..rank).filter(|&i| !prefix_ok(i)) {
        let last = cur.dims[i]
            .axes
            .last()
            .expect("invariant: not a prefix, so not empty");
        if let Some(j) = wanted_next(last, i) {
            return ReshardKind::AllToAll {
                split_dim: j,
                concat_dim: i,
                axes: vec![last.clone()],
            };
        }
    }
    // 4. All-reduces of what stays pending.
    if !pending.is_empty() {
        return ReshardKind::AllReduce {
            axes: cur
                .partial
                .iter()
                .filter(|a| pending.contains(a.as_str()))
                .cloned()
                .collect(),
            func: cur.partial_fn,
        };
    }
    // 5. All-gathers: the minor run of misplaced axes of a dim, stopping before an axis that an
    //    all-to-all could move once exposed.
    if let Some(i) = (0..rank).find(|&i| !prefix_ok(i)) {
        let axes = &cur.dims[i].axes;
        let keep = axes
            .iter()
            .zip(&to.dims[i].axes)
            .take_while(|(a, b)| a == b)
            .count();
        let mut start = axes.len() - 1;
        while start > keep && wanted_next(&axes[start - 1], i).is_none() {
            start -= 1;
        }
        return ReshardKind::AllGather {
            dim: i,
            axes: axes[start..].to_vec(),
        };
    }
    // 6. New pending sums (every dim is right, so the target's pending axes are free).
    ReshardKind::MakePartial {
        axes: to
            .partial
            .iter()
            .filter(|a| !cur.partial.contains(a))
            .cloned()
            .collect(),
    }
}

pub(crate) fn apply(cur: &mut Sharding, kind: &ReshardKind, to: &Sharding) {
    let remove_pending =
        |cur: &mut Sharding, axes: &[String]| cur.partial.retain(|a| !axes.contains(a));
    match kind {
        ReshardKind::AllGather { dim, axes } => {
            let n = cur.dims[*dim].axes.len() - axes.len();
            cur.dims[*dim].axes.truncate(n);
        }
        ReshardKind::ReduceScatter { dim, axes, .. } => {
            remove_pending(cur, axes);
            cur.dims[*dim].axes.extend(axes.iter().cloned());
        }
        ReshardKind::AllReduce { axes, .. } => remove_pending(cur, axes),
        ReshardKind::AllToAll {
            split_dim,
            concat_dim,
            axes,
        } => {
            let n = cur.dims[*concat_dim].axes.len() - axes.len();
            cur.dims[*concat_dim].axes.truncate(n);
            cur.dims[*split_dim].axes.extend(axes.iter().cloned());
        }
        ReshardKind::CollectivePermute { .. } => {
            for (c, t) in cur.dims.iter_mut().zip(&to.dims) {
                c.axes = t.axes.clone();
            }
        }
        ReshardKind::LocalSlice { dim, axes } => cur.dims[*dim].axes.extend(axes.iter().cloned()),
        ReshardKind::MakePartial { axes } => {
            cur.partial.extend(axes.iter().cloned());
            cur.partial_fn = to.partial_fn;
        }
    }
}
