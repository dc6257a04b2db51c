//! The graphs a pipelined run of a training step needs, cut out of the step: its forward up to
//! the loss, that forward on one micro-batch, and the optimizer's tail (the step's outputs from
//! the loss, the gradients and the inputs).

use std::collections::BTreeMap;

use shardc_codegen::{partition, SpmdProgram};
use shardc_ir::{
    Annotation, DimSharding, Graph, Mesh, Node, Op, Phase, ReduceFn, Role, Sharding, ValueId,
};

/// The name of the mesh axis a micro-batch program is partitioned over (never a user's axis:
/// the micro-batch program is built from the forward alone).
const MICRO_AXIS: &str = "micro_batch";

/// `keep[i]` of `g`, in order, with `replace`d values turned into inputs of `role`: the new
/// graph and the map from `g`'s values to its own.
fn rebuild(
    g: &Graph,
    keep: &[bool],
    replace: &BTreeMap<ValueId, Role>,
) -> (Graph, BTreeMap<ValueId, ValueId>) {
    let mut out = Graph::new(g.name.clone());
    let mut map = BTreeMap::new();
    for (i, n) in g.nodes.iter().enumerate() {
        if !keep[i] {
            continue;
        }
        let v = ValueId(i as u32);
        let mut node = n.clone();
        if let Some(&role) = replace.get(&v) {
            node.op = Op::Input { init: None };
            node.operands.clear();
            node.role = role;
        } else {
            node.operands = n.operands.iter().map(|o| map[o]).collect();
        }
        map.insert(v, ValueId(out.nodes.len() as u32));
        out.nodes.push(node);
    }
    (out, map)
}

/// Which values `roots` depend on, stopping at `stop` (kept, their operands not followed).
fn ancestors(g: &Graph, roots: &[ValueId], stop: &BTreeMap<ValueId, Role>) -> Vec<bool> {
    let mut keep = vec![false; g.len()];
    let mut work: Vec<ValueId> = roots.to_vec();
    while let Some(v) = work.pop() {
        if std::mem::replace(&mut keep[v.index()], true) || stop.contains_key(&v) {
            continue;
        }
        work.extend(g.node(v).operands.iter().copied());
    }
    keep
}

/// The step's forward: every value the loss depends on, with the loss its one output.
pub(crate) fn forward_of(step: &Graph, loss: ValueId) -> Result<Graph, String> {
    let keep = ancestors(step, &[loss], &BTreeMap::new());
    if let Some(n) = step
        .nodes
        .iter()
        .zip(&keep)
        .find(|(n, &k)| k && (n.phase != Phase::Forward || n.recompute))
        .map(|(n, _)| n)
    {
        return Err(format!(
            "the loss depends on `{}`, a {} node: not a forward",
            n.name,
            n.phase.name()
        ));
    }
    let (mut fwd, map) = rebuild(step, &keep, &BTreeMap::new());
    fwd.outputs = vec![map[&loss]];
    fwd.training.loss = Some(map[&loss]);
    shardc_ir::verify(&fwd).map_err(|e| format!("the step's forward: {e}"))?;
    Ok(fwd)
}

/// The forward on one of `m` micro-batches (every data input's first dim divided by `m`),
/// computing that micro-batch's share of the loss: the loss of the whole batch is the sum of
/// the micro-batches' losses, and so are its gradients. Built by partitioning the forward
/// over an axis of `m` "devices" with the data split on their batch dim and dropping the sums
/// over that axis; any other exchange between micro-batches is refused, naming the node.
/// Returns the micro-batch graph and the partitioned program (whose input shardings say how
/// to slice the data of micro-batch `k`: it is "device" `k`).
pub(crate) fn micro_batch_of(fwd: &Graph, m: u64) -> Result<(Graph, SpmdProgram), String> {
    let mesh = Mesh::new(&[(MICRO_AXIS, m)]).map_err(|e| e.to_string())?;
    let mut annotations = Vec::new();
    for v in fwd.inputs() {
        let n = fwd.node(v);
        if n.role != Role::Input || n.ty.rank() == 0 {
            continue;
        }
        let b = n.ty.dims()[0];
        if b % m != 0 {
            return Err(format!(
                "data input `{}` has batch {b}, which {m} micro-batches do not divide",
                n.name
            ));
        }
        let mut s = Sharding::replicated(n.ty.rank());
        s.dims[0] = DimSharding::on(&[MICRO_AXIS]);
        for d in &mut s.dims {
            d.open = false;
        }
        annotations.push(Annotation {
            value: n.name.clone(),
            sharding: s,
            priority: 0,
        });
    }
    let sharded = shardc_sharding::propagate(fwd, &mesh, &annotations)
        .map_err(|e| format!("splitting the batch into {m} micro-batches: {e}"))?;
    for v in fwd.inputs() {
        let n = fwd.node(v);
        if n.role != Role::Input && !sharded.assignment.shardings[v.index()].is_replicated() {
            return Err(format!(
                "splitting the batch into micro-batches would split `{}` (a {}), which has no \
                 batch dim",
                n.name,
                n.role.name()
            ));
        }
    }
    let program = partition(fwd, &sharded.assignment)
        .map_err(|e| format!("partitioning the forward into {m} micro-batches: {e}"))?;
    let local = &program.graph;
    // Sums over the micro-batch axis become the micro-batch's own share.
    let mut skip: BTreeMap<ValueId, ValueId> = BTreeMap::new();
    let mut out = Graph::new(fwd.name.clone());
    let mut map: BTreeMap<ValueId, ValueId> = BTreeMap::new();
    for (i, n) in local.nodes.iter().enumerate() {
        let v = ValueId(i as u32);
        let resolve = |o: &ValueId| skip.get(o).copied().unwrap_or(*o);
        match &n.op {
            Op::AllReduce {
                func: ReduceFn::Sum,
                ..
            } => {
                skip.insert(v, resolve(&n.operands[0]));
                continue;
            }
            op if op.is_collective() || matches!(op, Op::AxisIndex { .. }) => {
                return Err(micro_refusal(n));
            }
            _ => {}
        }
        let mut node = n.clone();
        node.operands = n.operands.iter().map(|o| map[&resolve(o)]).collect();
        map.insert(v, ValueId(out.nodes.len() as u32));
        out.nodes.push(node);
    }
    let loss = program
        .outputs
        .first()
        .map(|o| map[&skip.get(&o.local).copied().unwrap_or(o.local)])
        .ok_or("the forward has no output")?;
    out.outputs = vec![loss];
    out.training.loss = Some(loss);
    shardc_ir::verify(&out).map_err(|e| format!("the micro-batch forward: {e}"))?;
    Ok((out, program))
}

fn micro_refusal(n: &Node) -> String {
    format!(
        "`{}` ({}) mixes the micro-batches' values: a pipelined step needs a forward whose \
         loss is a sum of per-sample terms",
        n.name,
        n.op.name()
    )
}

/// The step's tail: its outputs computed from the loss, the gradients and its inputs (the
/// optimizer's update), with the loss and every gradient as inputs. Refuses a step whose
/// outputs need any other forward or backward value, naming it. `graph.inputs()` of the tail
/// are each either a step input or one of `given`; the second value maps each tail input to
/// the step value it stands for.
pub(crate) fn tail_of(step: &Graph, given: &[ValueId]) -> Result<(Graph, Vec<ValueId>), String> {
    let replace: BTreeMap<ValueId, Role> = given.iter().map(|&v| (v, Role::Input)).collect();
    let keep = ancestors(step, &step.outputs, &replace);
    // Input-free nodes (constants, iotas) may sit in any phase.
    let mut free = vec![false; step.len()];
    for (i, n) in step.nodes.iter().enumerate() {
        free[i] = !matches!(n.op, Op::Input { .. }) && n.operands.iter().all(|o| free[o.index()]);
    }
    for (i, n) in step.nodes.iter().enumerate() {
        let v = ValueId(i as u32);
        let computed = !matches!(n.op, Op::Input { .. }) && !replace.contains_key(&v);
        if keep[i] && computed && !free[i] && n.phase != Phase::Update {
            return Err(format!(
                "the step's outputs need `{}` (a {} value), which a pipelined run does not \
                 keep: it gives the loss, the gradients and what the optimizer computes from \
                 them",
                n.name,
                n.phase.name()
            ));
        }
    }
    let (mut tail, map) = rebuild(step, &keep, &replace);
    tail.outputs = step.outputs.iter().map(|o| map[o]).collect();
    shardc_ir::verify(&tail).map_err(|e| format!("the step's update: {e}"))?;
    let back: BTreeMap<ValueId, ValueId> = map.iter().map(|(&s, &t)| (t, s)).collect();
    let sources = tail.inputs().map(|v| back[&v]).collect();
    Ok((tail, sources))
}

/// Each node's pipeline stage from the plan's layer counts: numbered layers (`layers.N`, in
/// the order they first appear) fill the stages in order, `layers_per_stage[s]` each; a node
/// outside the layers sits with the layer before it in node order (stage 0 before the first),
/// and no earlier than its operands, so the embedding is on the first stage and the head and
/// loss on the last.
pub(crate) fn stages_by_layer(
    g: &Graph,
    layers_per_stage: &[u64],
) -> Result<BTreeMap<String, usize>, String> {
    let mut order: Vec<&str> = Vec::new();
    for n in &g.nodes {
        if let Some(l) = n.layer() {
            if !order.contains(&l) {
                order.push(l);
            }
        }
    }
    let total: u64 = layers_per_stage.iter().sum();
    if total != order.len() as u64 {
        return Err(format!(
            "the plan puts {total} layers on its stages, graph `{}` has {} (`layers.N` scopes)",
            g.name,
            order.len()
        ));
    }
    let mut layer_stage = BTreeMap::new();
    let mut it = order.iter();
    for (s, &count) in layers_per_stage.iter().enumerate() {
        for l in it.by_ref().take(count as usize) {
            layer_stage.insert(*l, s);
        }
    }
    let mut stage = vec![0usize; g.len()];
    let mut current = 0;
    let mut by_name = BTreeMap::new();
    for (i, n) in g.nodes.iter().enumerate() {
        if matches!(n.op, Op::Input { .. }) {
            // An input sits on every stage that reads it; it pulls no one along.
            continue;
        }
        stage[i] = match n.layer().and_then(|l| layer_stage.get(l)) {
            Some(&s) => {
                current = s;
                s
            }
            None => n
                .operands
                .iter()
                .map(|o| stage[o.index()])
                .fold(current, usize::max),
        };
        by_name.insert(n.name.clone(), stage[i]);
    }
    Ok(by_name)
}
