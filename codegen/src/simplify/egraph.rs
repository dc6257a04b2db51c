//! The e-graph rewrites and the extraction back into a program.

use std::collections::HashMap;

use egg::{Analysis, DidMerge, EGraph, Id, Language};
use shardc_ir::{Graph, Literal, Op, Phase, ReduceFn, Role, TensorType, ValueId};

use crate::error::{CodegenError, Result};
use crate::program::SpmdProgram;

/// One e-node: an entry of the op table and its operand classes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct Node {
    key: u32,
    args: Vec<Id>,
}

impl Language for Node {
    type Discriminant = u32;
    fn discriminant(&self) -> u32 {
        self.key
    }
    fn matches(&self, other: &Self) -> bool {
        self.key == other.key && self.args.len() == other.args.len()
    }
    fn children(&self) -> &[Id] {
        &self.args
    }
    fn children_mut(&mut self) -> &mut [Id] {
        &mut self.args
    }
}

/// An op with its result type: original nodes keep their own entry (so two inputs of one type
/// never merge), ops added by rewrites are interned by their text.
#[derive(Debug, Clone)]
struct Entry {
    op: Op,
    ty: TensorType,
    name: String,
    role: Role,
    phase: Phase,
}

/// The op table, kept as the e-graph's analysis; each class's data is its type.
#[derive(Default)]
struct Table {
    entries: Vec<Entry>,
    interned: HashMap<String, u32>,
}

impl Analysis<Node> for Table {
    type Data = TensorType;
    fn make(egraph: &mut EGraph<Node, Self>, enode: &Node, _id: Id) -> TensorType {
        egraph.analysis.entries[enode.key as usize].ty.clone()
    }
    fn merge(&mut self, _a: &mut TensorType, _b: TensorType) -> DidMerge {
        // Rewrites only union values of one type.
        DidMerge(false, false)
    }
}

type EG = EGraph<Node, Table>;

fn entry<'a>(eg: &'a EG, n: &Node) -> &'a Entry {
    &eg.analysis.entries[n.key as usize]
}

/// Adds an op made by a rewrite (same op and type → same table entry, so repeats hash-cons).
fn add(eg: &mut EG, op: Op, ty: TensorType, args: Vec<Id>, name: String) -> Id {
    let text = format!("{op:?}|{ty}");
    let key = match eg.analysis.interned.get(&text) {
        Some(&k) => k,
        None => {
            let k = eg.analysis.entries.len() as u32;
            eg.analysis.entries.push(Entry {
                name,
                op,
                ty,
                role: Role::Activation,
                phase: Phase::Forward,
            });
            eg.analysis.interned.insert(text, k);
            k
        }
    };
    eg.add(Node { key, args })
}

/// The class's value as `axis_index(axes) * size`: `(axes, size)`.
fn shard_offset(eg: &EG, c: Id) -> Option<(Vec<String>, u64)> {
    for n in eg[c].iter() {
        match &entry(eg, n).op {
            Op::AxisIndex { axes } => return Some((axes.clone(), 1)),
            Op::Binary {
                func: shardc_ir::BinaryFn::Mul,
            } => {
                let axes = eg[n.args[0]].iter().find_map(|m| match &entry(eg, m).op {
                    Op::AxisIndex { axes } => Some(axes.clone()),
                    _ => None,
                });
                if let (Some(axes), Some(size)) = (axes, const_value(eg, n.args[1])) {
                    return Some((axes, size as u64));
                }
            }
            _ => {}
        }
    }
    None
}

fn const_value(eg: &EG, c: Id) -> Option<f64> {
    eg[c].iter().find_map(|n| match &entry(eg, n).op {
        Op::Constant {
            value: Literal::Splat(v),
        } if v.fract() == 0.0 && *v >= 0.0 => Some(*v),
        _ => None,
    })
}

/// A dynamic slice that keeps every dim whole but `d`, which it cuts at this device's shard
/// offset along `axes`: `(operand, d, axes, shard size)`.
fn shard_slice(eg: &EG, n: &Node) -> Option<(Id, usize, Vec<String>, u64)> {
    let Op::DynamicSlice { sizes } = &entry(eg, n).op else {
        return None;
    };
    let x = n.args[0];
    let full = eg[x].data.dims().to_vec();
    let mut cut = None;
    for (d, &s) in n.args[1..].iter().enumerate() {
        if const_value(eg, s) == Some(0.0) && sizes[d] == full[d] {
            continue;
        }
        let (axes, size) = shard_offset(eg, s)?;
        if cut.is_some() || size != sizes[d] {
            return None;
        }
        cut = Some((d, axes));
    }
    let (d, axes) = cut?;
    Some((x, d, axes, sizes[d]))
}

fn axes_size(eg: &EG, axes: &[String], mesh: &shardc_ir::Mesh) -> u64 {
    let _ = eg;
    axes.iter()
        .map(|a| mesh.axis_size(a).unwrap_or(1))
        .product()
}

/// A zero-valued padding at the high end of dim `d` only.
fn is_high_pad_of_dim(op: &Op, d: usize) -> bool {
    match op {
        Op::Pad {
            low,
            high,
            interior,
            value,
        } => {
            *value == 0.0
                && low.iter().all(|&l| l == 0)
                && interior.iter().all(|&i| i == 0)
                && high.iter().enumerate().all(|(k, &h)| k == d || h == 0)
        }
        _ => false,
    }
}

/// A prefix slice that trims dim `d` only.
fn is_prefix_slice_of_dim(op: &Op, from: &TensorType, d: usize) -> bool {
    match op {
        Op::Slice {
            start,
            limit,
            stride,
        } => {
            start.iter().all(|&s| s == 0)
                && stride.iter().all(|&s| s == 1)
                && limit
                    .iter()
                    .enumerate()
                    .all(|(k, &l)| k == d || l == from.dims()[k])
        }
        _ => false,
    }
}

fn parent_classes(eg: &EG, c: Id) -> usize {
    let mut ps: Vec<Id> = eg[c].parents().map(|p| eg.find(p)).collect();
    ps.sort();
    ps.dedup();
    ps.len()
}

/// What one rewrite found: union `class` with a node built from `make`.
enum Found {
    /// `class` equals the existing class `same`.
    Same(Id, Id),
    /// `class` equals `op` applied to `args` (optionally after padding the operand by `pad`).
    New {
        class: Id,
        op: Op,
        arg: Id,
        pad: Option<Op>,
    },
}

fn search(eg: &EG, mesh: &shardc_ir::Mesh) -> Vec<Found> {
    let mut found = Vec::new();
    for class in eg.classes() {
        for n in class.iter() {
            if let Some((x, d, axes, size)) = shard_slice(eg, n) {
                let n_ax = axes_size(eg, &axes, mesh);
                for m in eg[x].iter() {
                    let e = entry(eg, m);
                    match &e.op {
                        // all_reduce → slice: reduce_scatter.
                        Op::AllReduce { axes: a, func }
                            if *a == axes && parent_classes(eg, x) <= 1 =>
                        {
                            if eg[m.args[0]].data.dims()[d] == n_ax * size {
                                found.push(Found::New {
                                    class: class.id,
                                    op: Op::ReduceScatter {
                                        dim: d,
                                        axes: axes.clone(),
                                        func: *func,
                                    },
                                    arg: m.args[0],
                                    pad: None,
                                });
                            }
                        }
                        // all_reduce → pad → slice: pad first (zeros add nothing), then reduce_scatter.
                        op if is_high_pad_of_dim(op, d) => {
                            for r in eg[m.args[0]].iter() {
                                if let Op::AllReduce {
                                    axes: a,
                                    func: ReduceFn::Sum,
                                } = &entry(eg, r).op
                                {
                                    if *a == axes && parent_classes(eg, m.args[0]) <= 1 {
                                        found.push(Found::New {
                                            class: class.id,
                                            op: Op::ReduceScatter {
                                                dim: d,
                                                axes: axes.clone(),
                                                func: ReduceFn::Sum,
                                            },
                                            arg: r.args[0],
                                            pad: Some(op.clone()),
                                        });
                                    }
                                }
                                // all_gather → unpad → pad → slice: this device's own shard.
                                let is_unpad = matches!(entry(eg, r).op, Op::Slice { .. })
                                    && is_prefix_slice_of_dim(
                                        &entry(eg, r).op,
                                        &eg[r.args[0]].data,
                                        d,
                                    );
                                if is_unpad {
                                    for q in eg[r.args[0]].iter() {
                                        if let Op::AllGather { dim, axes: a } = &entry(eg, q).op {
                                            if *dim == d
                                                && *a == axes
                                                && eg[q.args[0]].data == class.data
                                            {
                                                found.push(Found::Same(class.id, q.args[0]));
                                            }
                                        }
                                    }
                                }
                            }
                        }
                        // all_gather → slice.
                        Op::AllGather { dim, axes: a }
                            if *dim == d && *a == axes && eg[m.args[0]].data == class.data =>
                        {
                            found.push(Found::Same(class.id, m.args[0]));
                        }
                        _ => {}
                    }
                }
            }
            // Consecutive collectives of one kind over disjoint axes: one collective.
            match &entry(eg, n).op {
                // A copy is its operand (lets the patterns above see through it).
                Op::Copy if eg.find(n.args[0]) != class.id => {
                    found.push(Found::Same(class.id, n.args[0]));
                }
                Op::AllReduce { axes: outer, func } => {
                    for m in eg[n.args[0]].iter() {
                        if let Op::AllReduce {
                            axes: inner,
                            func: f2,
                        } = &entry(eg, m).op
                        {
                            if f2 == func && inner.iter().all(|a| !outer.contains(a)) {
                                let mut axes: Vec<String> =
                                    inner.iter().chain(outer).cloned().collect();
                                axes.sort_by_key(|a| mesh.axis_index(a));
                                found.push(Found::New {
                                    class: class.id,
                                    op: Op::AllReduce { axes, func: *func },
                                    arg: m.args[0],
                                    pad: None,
                                });
                            }
                        }
                    }
                }
                Op::AllGather { dim, axes: outer } => {
                    for m in eg[n.args[0]].iter() {
                        if let Op::AllGather {
                            dim: d2,
                            axes: inner,
                        } = &entry(eg, m).op
                        {
                            if d2 == dim && inner.iter().all(|a| !outer.contains(a)) {
                                // Gathering `inner` first makes its shards the minor blocks.
                                let axes = outer.iter().chain(inner).cloned().collect();
                                found.push(Found::New {
                                    class: class.id,
                                    op: Op::AllGather { dim: *dim, axes },
                                    arg: m.args[0],
                                    pad: None,
                                });
                            }
                        }
                    }
                }
                _ => {}
            }
        }
    }
    found
}

fn apply(eg: &mut EG, found: Vec<Found>) -> bool {
    let mut changed = false;
    for f in found {
        changed |= match f {
            Found::Same(a, b) => eg.union(a, b),
            Found::New {
                class,
                op,
                arg,
                pad,
            } => {
                // Named after the value it replaces, so the dump still says why it is there.
                let base = eg[class]
                    .iter()
                    .map(|n| entry(eg, n).name.clone())
                    .min_by_key(|n| (n.len(), n.clone()))
                    .unwrap_or_default();
                let arg = match pad {
                    Some(p) => {
                        let ty = pad_type(&eg[arg].data, &p);
                        add(eg, p, ty, vec![arg], format!("{base}.pad"))
                    }
                    None => arg,
                };
                let ty = eg[class].data.clone();
                let name = format!("{base}.{}", op.name());
                let id = add(eg, op, ty, vec![arg], name);
                eg.union(class, id)
            }
        };
    }
    eg.rebuild();
    changed
}

fn pad_type(x: &TensorType, pad: &Op) -> TensorType {
    match pad {
        Op::Pad { low, high, .. } => TensorType::new(
            x.dtype,
            x.dims()
                .iter()
                .enumerate()
                .map(|(d, &s)| (s as i64 + low[d] + high[d]) as u64)
                .collect::<Vec<_>>(),
        ),
        _ => x.clone(),
    }
}

/// What one node costs on its own: collectives what they move (plus a latency term), everything
/// else almost nothing. A node's total is this plus its operands' totals (egg's tree cost).
fn own_cost(e: &Entry) -> f64 {
    if e.op.is_collective() {
        1e3 + e.ty.size_bytes() as f64
    } else {
        1.0
    }
}

/// A candidate in the extraction's queue: `node` of class `class` at total `cost`. Ordered by
/// cost, then class, then the node's place in its class, so that ties go to the first node.
#[derive(PartialEq)]
struct Candidate {
    cost: f64,
    class: usize,
    node: usize,
}

impl Eq for Candidate {}

impl Ord for Candidate {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        // Reversed: `BinaryHeap` pops the greatest, the queue wants the cheapest.
        other
            .cost
            .total_cmp(&self.cost)
            .then(other.class.cmp(&self.class))
            .then(other.node.cmp(&self.node))
    }
}

impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// The cheapest node of every class under the tree cost (`own_cost` plus the operands' totals),
/// as egg's `Extractor` finds it, in O(n log n) rather than one sweep over all classes per level
/// of the program (egg repeats its sweep until nothing changes: quadratic on a deep program).
///
/// Knuth's generalisation of Dijkstra's algorithm (Knuth 1977, "A generalization of Dijkstra's
/// algorithm"): a node's total is at least each operand's, so the cheapest open candidate is
/// final when it leaves the queue; a node becomes a candidate once all its operands are final.
/// Nodes on a cycle (a class unioned with one of its own operands' users) never become one.
fn best_nodes(eg: &EG) -> HashMap<Id, Node> {
    let mut ids: Vec<Id> = eg.classes().map(|c| c.id).collect();
    ids.sort();
    let index: HashMap<Id, usize> = ids.iter().enumerate().map(|(i, &c)| (c, i)).collect();
    let class_of = |a: Id| index[&eg.find(a)];
    // For every class, the (class, node) pairs that read it, and each node's open operands.
    let mut users: Vec<Vec<(usize, usize)>> = vec![Vec::new(); ids.len()];
    let mut open: Vec<Vec<usize>> = Vec::with_capacity(ids.len());
    let mut queue = std::collections::BinaryHeap::new();
    let total = |n: &Node, cost: &[f64]| {
        n.args
            .iter()
            .fold(own_cost(entry(eg, n)), |acc, &a| acc + cost[class_of(a)])
    };
    let no_cost = vec![0.0; 0];
    for (i, &c) in ids.iter().enumerate() {
        let mut counts = Vec::with_capacity(eg[c].nodes.len());
        for (j, n) in eg[c].iter().enumerate() {
            let mut args: Vec<usize> = n.args.iter().map(|&a| class_of(a)).collect();
            args.sort_unstable();
            args.dedup();
            for &a in &args {
                users[a].push((i, j));
            }
            if args.is_empty() {
                queue.push(Candidate {
                    cost: total(n, &no_cost),
                    class: i,
                    node: j,
                });
            }
            counts.push(args.len());
        }
        open.push(counts);
    }
    let mut cost = vec![f64::INFINITY; ids.len()];
    let mut best: Vec<Option<usize>> = vec![None; ids.len()];
    while let Some(Candidate {
        cost: c,
        class,
        node,
    }) = queue.pop()
    {
        if best[class].is_some() {
            continue;
        }
        best[class] = Some(node);
        cost[class] = c;
        for &(i, j) in &users[class] {
            open[i][j] -= 1;
            if open[i][j] == 0 && best[i].is_none() {
                let n = &eg[ids[i]].nodes[j];
                queue.push(Candidate {
                    cost: total(n, &cost),
                    class: i,
                    node: j,
                });
            }
        }
    }
    ids.iter()
        .zip(best)
        .filter_map(|(&c, j)| Some((c, eg[c].nodes[j?].clone())))
        .collect()
}

/// Loads the program into an e-graph, rewrites to a fixed point (bounded) and extracts.
pub(super) fn rewrite(p: &SpmdProgram) -> Result<SpmdProgram> {
    let g = &p.graph;
    let mesh = g
        .mesh
        .clone()
        .ok_or_else(|| CodegenError::Data("the program names no mesh".into()))?;
    let mut eg = EG::new(Table::default());
    let mut ids = Vec::with_capacity(g.len());
    for n in &g.nodes {
        let key = eg.analysis.entries.len() as u32;
        eg.analysis.entries.push(Entry {
            op: n.op.clone(),
            ty: n.ty.clone(),
            name: n.name.clone(),
            role: n.role,
            phase: n.phase,
        });
        let args = n.operands.iter().map(|o| ids[o.index()]).collect();
        ids.push(eg.add(Node { key, args }));
    }
    eg.rebuild();
    // Each rewrite removes or merges a collective, so a handful of rounds reaches the fixed point.
    for _ in 0..8 {
        let found = search(&eg, &mesh);
        if found.is_empty() || !apply(&mut eg, found) {
            break;
        }
    }
    extract(p, &eg, &ids)
}

fn extract(p: &SpmdProgram, eg: &EG, ids: &[Id]) -> Result<SpmdProgram> {
    let g = &p.graph;
    let best = best_nodes(eg);
    let mut out = Graph::new(&g.name);
    out.mesh = g.mesh.clone();
    let mut names = std::collections::HashSet::new();
    let mut memo: HashMap<Id, ValueId> = HashMap::new();
    let mut emit = |out: &mut Graph, e: &Entry, args: Vec<ValueId>| -> Result<ValueId> {
        let mut name = e.name.clone();
        let mut i = 1;
        while !names.insert(name.clone()) {
            name = format!("{}.{i}", e.name);
            i += 1;
        }
        let v = out.push(name, e.op.clone(), args, Some(e.ty.clone()))?;
        out.nodes[v.index()].role = e.role;
        out.nodes[v.index()].phase = e.phase;
        Ok(v)
    };
    // Inputs first and in order: the runtime feeds them positionally.
    for v in g.inputs() {
        let e = &eg.analysis.entries[v.index()];
        let x = emit(&mut out, e, vec![])?;
        memo.insert(eg.find(ids[v.index()]), x);
    }
    let t = &g.training;
    let roots: Vec<ValueId> = g
        .outputs
        .iter()
        .copied()
        .chain(t.loss)
        .chain(
            t.gradients
                .iter()
                .chain(&t.updates)
                .flat_map(|&(a, b)| [a, b]),
        )
        .collect();
    for &r in &roots {
        let mut stack = vec![(eg.find(ids[r.index()]), false)];
        while let Some((c, ready)) = stack.pop() {
            if memo.contains_key(&c) {
                continue;
            }
            let n = best.get(&c).ok_or_else(|| {
                CodegenError::Data(format!(
                    "collective simplification: e-class {c} has no acyclic form"
                ))
            })?;
            if !ready {
                stack.push((c, true));
                for &a in n.args.iter().rev() {
                    let a = eg.find(a);
                    if !memo.contains_key(&a) {
                        stack.push((a, false));
                    }
                }
                continue;
            }
            let args = n.args.iter().map(|&a| memo[&eg.find(a)]).collect();
            let x = emit(&mut out, &eg.analysis.entries[n.key as usize], args)?;
            memo.insert(c, x);
        }
    }
    let map = |v: ValueId| memo[&eg.find(ids[v.index()])];
    out.outputs = g.outputs.iter().map(|&v| map(v)).collect();
    out.training.loss = t.loss.map(map);
    out.training.gradients = t.gradients.iter().map(|&(a, b)| (map(a), map(b))).collect();
    out.training.updates = t.updates.iter().map(|&(a, b)| (map(a), map(b))).collect();
    let mut q = SpmdProgram {
        stage: p.stage,
        graph: out,
        inputs: p.inputs.clone(),
        outputs: p.outputs.clone(),
    };
    for i in &mut q.inputs {
        i.local = map(i.local);
    }
    for o in &mut q.outputs {
        o.local = map(o.local);
    }
    Ok(q)
}
