//! The cheapest resharding: Dijkstra over layouts, each edge one collective (or a free local
//! slice or pending split) priced in bytes each device sends, ties broken by fewer steps.
//!
//! Single-axis moves suffice for slices, gathers and reduce-scatters (doing two axes at once
//! costs the same as one after the other); all-to-alls and all-reduces over several axes at
//! once are cheaper than in turn, so those moves take axis runs and subsets. A collective-permute
//! goes to any layout with the same number of shards per dim.
//!
//! Only the axes that the source or the target uses take part: a plan never slices over a
//! spare axis to spread the work across replicas (which can send fewer bytes per device, but
//! over the spare axis's links, in more steps), so a pending sum over `tp` stays one all-reduce
//! over `tp`.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::sync::{Mutex, OnceLock};

use shardc_ir::{DimSharding, Mesh, Sharding, TensorType};

use crate::reshard::{
    apply, local_type, permute_unpaired, same_layout, step_bytes, ReshardKind, ReshardStep,
};

/// Layouts explored before giving up (then the one-step-at-a-time plan stands). A 4-axis mesh
/// and a rank-4 value stay well inside it.
const MAX_STATES: usize = 20_000;

/// A layout as a search key: each dim's axes, then the pending axes in mesh order.
type Key = (Vec<Vec<String>>, Vec<String>);

fn key(s: &Sharding, mesh: &Mesh) -> Key {
    let mut p = s.partial.clone();
    p.sort_by_key(|a| mesh.axis_index(a));
    (s.dims.iter().map(|d| d.axes.clone()).collect(), p)
}

fn with_dims(mut s: Sharding) -> Sharding {
    s.dims = s
        .dims
        .iter()
        .map(|d| DimSharding::on(&d.axes.iter().map(String::as_str).collect::<Vec<_>>()))
        .collect();
    s
}

/// Plans already found, by (source, target, type, mesh): a graph reshards the same few ways
/// many times (every layer of a transformer alike). Cleared when it grows past this many.
const CACHE_LIMIT: usize = 4096;

/// (source, target, global type, mesh axes): hashed, never iterated, so its order cannot reach
/// output. The mesh's device order is left out: the search sees only axis names and sizes
/// (pairs, the one thing the device order decides, are made after the cache), and hashing a
/// thousand device ids per lookup was most of the planner's whole-step pricing.
type PlanKey = (Sharding, Sharding, TensorType, Vec<shardc_ir::MeshAxis>);

type Plans = HashMap<PlanKey, Option<Vec<ReshardStep>>>;

fn cache() -> &'static Mutex<Plans> {
    static CACHE: OnceLock<Mutex<Plans>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The steps from `cur` to `to` that send the fewest bytes per device, each collective-permute's
/// pairs left empty (what a permute sends does not depend on them; `reshard` makes them for a
/// plan that runs); `None` if the layout space is too large to search.
pub(crate) fn cheapest(
    cur: &Sharding,
    to: &Sharding,
    global: &TensorType,
    mesh: &Mesh,
) -> Option<Vec<ReshardStep>> {
    let k: PlanKey = (cur.clone(), to.clone(), global.clone(), mesh.axes.clone());
    // A poisoned lock only means another thread panicked mid-insert; the map is still whole.
    if let Some(plan) = cache().lock().unwrap_or_else(|e| e.into_inner()).get(&k) {
        return plan.clone();
    }
    let plan = search(cur, to, global, mesh);
    let mut c = cache().lock().unwrap_or_else(|e| e.into_inner());
    if c.len() >= CACHE_LIMIT {
        c.clear();
    }
    c.insert(k, plan.clone());
    plan
}

fn search(
    cur: &Sharding,
    to: &Sharding,
    global: &TensorType,
    mesh: &Mesh,
) -> Option<Vec<ReshardStep>> {
    let target = key(to, mesh);
    let involved: Vec<String> = mesh
        .axis_names()
        .into_iter()
        .filter(|a| cur.used_axes().contains(a) || to.used_axes().contains(a))
        .map(String::from)
        .collect();
    let mut best: BTreeMap<Key, (u64, usize)> = BTreeMap::new();
    let mut parent: BTreeMap<Key, (Key, ReshardStep)> = BTreeMap::new();
    let mut layouts: BTreeMap<Key, Sharding> = BTreeMap::new();
    let mut heap = BinaryHeap::new();
    let start = key(cur, mesh);
    best.insert(start.clone(), (0, 0));
    layouts.insert(start.clone(), cur.clone());
    heap.push(Reverse((0u64, 0usize, start)));
    while let Some(Reverse((bytes, steps, k))) = heap.pop() {
        if best.get(&k).is_some_and(|&b| b < (bytes, steps)) {
            continue;
        }
        if k == target {
            let mut plan = Vec::new();
            let mut at = k;
            while let Some((p, step)) = parent.get(&at) {
                plan.push(step.clone());
                at = p.clone();
            }
            plan.reverse();
            return Some(plan);
        }
        if layouts.len() > MAX_STATES {
            return None;
        }
        let s = layouts[&k].clone();
        for step in moves(&s, to, &involved, global, mesh) {
            let next = key(&step.after, mesh);
            let cost = (bytes + step.bytes_per_device, steps + 1);
            if best.get(&next).is_some_and(|&b| b <= cost) {
                continue;
            }
            best.insert(next.clone(), cost);
            layouts.insert(next.clone(), step.after.clone());
            parent.insert(next.clone(), (k.clone(), step));
            heap.push(Reverse((cost.0, cost.1, next)));
        }
    }
    None
}

/// Every one-step move from `s` (towards `to` where a move needs a direction).
fn moves(
    s: &Sharding,
    to: &Sharding,
    involved: &[String],
    global: &TensorType,
    mesh: &Mesh,
) -> Vec<ReshardStep> {
    let local = local_type(s, global, mesh);
    let l = local.size_bytes();
    let rank = s.rank();
    let busy = crate::reshard::used(s);
    let unused: Vec<String> = involved
        .iter()
        .filter(|a| !busy.contains(a.as_str()))
        .cloned()
        .collect();
    let mut kinds = Vec::new();
    for d in 0..rank {
        let axes = &s.dims[d].axes;
        for a in &unused {
            kinds.push(ReshardKind::LocalSlice {
                dim: d,
                axes: vec![a.clone()],
            });
        }
        for k in 1..=axes.len() {
            let run = axes[axes.len() - k..].to_vec();
            kinds.push(ReshardKind::AllGather {
                dim: d,
                axes: run.clone(),
            });
            for j in (0..rank).filter(|&j| j != d) {
                kinds.push(ReshardKind::AllToAll {
                    split_dim: j,
                    concat_dim: d,
                    axes: run.clone(),
                });
            }
        }
        for p in &s.partial {
            kinds.push(ReshardKind::ReduceScatter {
                dim: d,
                axes: vec![p.clone()],
                func: s.partial_fn,
            });
        }
    }
    let n = s.partial.len().min(16);
    for mask in 1u32..(1 << n) {
        let axes: Vec<String> = (0..n)
            .filter(|i| mask & (1 << i) != 0)
            .map(|i| s.partial[i].clone())
            .collect();
        kinds.push(ReshardKind::AllReduce {
            axes,
            func: s.partial_fn,
        });
    }
    if s.partial.is_empty() || s.partial_fn == to.partial_fn {
        for a in unused.iter().filter(|a| to.partial.contains(a)) {
            kinds.push(ReshardKind::MakePartial {
                axes: vec![a.clone()],
            });
        }
    }
    let mut out: Vec<ReshardStep> = kinds
        .into_iter()
        .map(|kind| {
            let mut after = s.clone();
            apply(&mut after, &kind, to);
            ReshardStep {
                bytes_per_device: step_bytes(&kind, l, mesh),
                kind,
                local_operand: local.clone(),
                after: with_dims(after),
            }
        })
        .collect();
    for t in permute_targets(s, to, involved, mesh) {
        if let Some(p) = permute_unpaired(s, &t, global, mesh) {
            out.push(p);
        }
    }
    out
}

/// Layouts one collective-permute reaches from `s`: the same pending axes and the same number
/// of shards per dim. All of them where few axes and dims make that a short list, else only
/// the target.
fn permute_targets(s: &Sharding, to: &Sharding, involved: &[String], mesh: &Mesh) -> Vec<Sharding> {
    let free: Vec<String> = involved
        .iter()
        .filter(|a| !s.partial.contains(a))
        .cloned()
        .collect();
    let slots = s.rank() + 1;
    if (slots as u64).saturating_pow(free.len() as u32) > 256 {
        return if same_layout(s, to) {
            Vec::new()
        } else {
            vec![to.clone()]
        };
    }
    let want: Vec<u64> = (0..s.rank()).map(|d| s.shards_of_dim(mesh, d)).collect();
    let mut out = Vec::new();
    let mut dims: Vec<Vec<String>> = vec![Vec::new(); s.rank()];
    assign(&free, 0, &mut dims, &mut |dims: &Vec<Vec<String>>| {
        let counts: Vec<u64> = dims
            .iter()
            .map(|axes| {
                axes.iter()
                    .map(|a| mesh.axis_size(a).unwrap_or(1))
                    .product()
            })
            .collect();
        if counts == want {
            let t = Sharding {
                dims: dims
                    .iter()
                    .map(|axes| {
                        DimSharding::on(&axes.iter().map(String::as_str).collect::<Vec<_>>())
                    })
                    .collect(),
                partial: s.partial.clone(),
                partial_fn: s.partial_fn,
            };
            if !same_layout(s, &t) {
                out.push(t);
            }
        }
    });
    out
}

/// Calls `f` with every placement of `axes[i..]` (each appended to a dim, at any position among
/// those placed after it, or left unused).
fn assign(
    axes: &[String],
    i: usize,
    dims: &mut Vec<Vec<String>>,
    f: &mut dyn FnMut(&Vec<Vec<String>>),
) {
    if i == axes.len() {
        f(dims);
        return;
    }
    assign(axes, i + 1, dims, f);
    for d in 0..dims.len() {
        for pos in 0..=dims[d].len() {
            dims[d].insert(pos, axes[i].clone());
            assign(axes, i + 1, dims, f);
            dims[d].remove(pos);
        }
    }
}
