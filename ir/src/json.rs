//! The versioned JSON graph format (documented in `docs/graph-format.md`).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{IrError, Result};
use crate::graph::{Graph, Node, Phase, Role, Training, ValueId};
use crate::mesh::Mesh;
use crate::op::Op;
use crate::sharding::Annotation;
use crate::types::TensorType;
use crate::verify::verify;

/// The `format` field every graph file carries.
pub const FORMAT: &str = "shardc-graph";
/// The version this build writes and reads.
pub const VERSION: u32 = 1;

#[derive(Serialize)]
struct NodeOut<'a> {
    id: u32,
    name: &'a str,
    #[serde(flatten)]
    op: &'a Op,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    operands: Vec<u32>,
    #[serde(rename = "type")]
    ty: &'a TensorType,
    #[serde(skip_serializing_if = "is_activation")]
    role: Role,
    #[serde(skip_serializing_if = "is_forward")]
    phase: Phase,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    recompute: bool,
}

fn is_activation(r: &Role) -> bool {
    *r == Role::Activation
}

fn is_forward(p: &Phase) -> bool {
    *p == Phase::Forward
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NodeIn {
    id: u32,
    name: String,
    #[serde(default)]
    operands: Vec<u32>,
    #[serde(rename = "type")]
    ty: TensorType,
    #[serde(default)]
    role: Role,
    #[serde(default)]
    phase: Phase,
    #[serde(default)]
    recompute: bool,
}

#[derive(Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct TrainingJson {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    loss: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    gradients: Vec<(u32, u32)>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    updates: Vec<(u32, u32)>,
}

/// Writes a graph as pretty JSON.
pub fn to_json(g: &Graph) -> String {
    let nodes: Vec<Value> = g
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| {
            serde_json::to_value(NodeOut {
                id: i as u32,
                name: &n.name,
                op: &n.op,
                operands: n.operands.iter().map(|v| v.0).collect(),
                ty: &n.ty,
                role: n.role,
                phase: n.phase,
                recompute: n.recompute,
            })
            .expect("invariant: node serialization cannot fail")
        })
        .collect();
    let mut top = Map::new();
    top.insert("format".into(), FORMAT.into());
    top.insert("version".into(), VERSION.into());
    top.insert("name".into(), g.name.clone().into());
    if let Some(m) = &g.mesh {
        top.insert(
            "mesh".into(),
            serde_json::to_value(m).expect("invariant: mesh serializes"),
        );
    }
    top.insert("nodes".into(), Value::Array(nodes));
    top.insert(
        "outputs".into(),
        g.outputs.iter().map(|v| v.0).collect::<Vec<_>>().into(),
    );
    let t = &g.training;
    if t.loss.is_some() || !t.gradients.is_empty() || !t.updates.is_empty() {
        let tj = TrainingJson {
            loss: t.loss.map(|v| v.0),
            gradients: t.gradients.iter().map(|(a, b)| (a.0, b.0)).collect(),
            updates: t.updates.iter().map(|(a, b)| (a.0, b.0)).collect(),
        };
        top.insert(
            "training".into(),
            serde_json::to_value(tj).expect("invariant: training serializes"),
        );
    }
    if !g.annotations.is_empty() {
        top.insert(
            "annotations".into(),
            serde_json::to_value(&g.annotations).expect("invariant: annotations serialize"),
        );
    }
    serde_json::to_string_pretty(&Value::Object(top)).expect("invariant: JSON values serialize")
}

fn field_err(field: &str, e: impl std::fmt::Display) -> IrError {
    IrError::Format(format!("graph file: field `{field}`: {e}"))
}

/// Reads a graph from JSON, checking the format and version, resolving ids (duplicate or dangling
/// ids and cycles are errors; nodes out of topological order are reordered) and verifying it.
pub fn from_json(text: &str) -> Result<Graph> {
    let top: Value = serde_json::from_str(text)
        .map_err(|e| IrError::Format(format!("graph file is not valid JSON: {e}")))?;
    let mut top = match top {
        Value::Object(m) => m,
        _ => {
            return Err(IrError::Format(
                "graph file: expected a JSON object at the top level".into(),
            ))
        }
    };
    match top.remove("format") {
        Some(Value::String(f)) if f == FORMAT => {}
        Some(other) => {
            return Err(field_err(
                "format",
                format!("expected \"{FORMAT}\", got {other}"),
            ))
        }
        None => {
            return Err(field_err(
                "format",
                format!("missing; expected \"{FORMAT}\""),
            ))
        }
    }
    match top.remove("version").and_then(|v| v.as_u64()) {
        Some(v) if v == VERSION as u64 => {}
        Some(v) => {
            return Err(field_err(
                "version",
                format!("this build reads version {VERSION}, the file is version {v}"),
            ))
        }
        None => {
            return Err(field_err(
                "version",
                format!("missing or not an integer; expected {VERSION}"),
            ))
        }
    }
    let name = match top.remove("name") {
        Some(Value::String(s)) => s,
        None => String::new(),
        Some(other) => return Err(field_err("name", format!("expected a string, got {other}"))),
    };
    let mesh: Option<Mesh> = top
        .remove("mesh")
        .map(|v| serde_json::from_value(v).map_err(|e| field_err("mesh", e)))
        .transpose()?;
    let raw_nodes = match top.remove("nodes") {
        Some(Value::Array(a)) => a,
        Some(_) => return Err(field_err("nodes", "expected an array of nodes")),
        None => return Err(field_err("nodes", "missing")),
    };
    let outputs: Vec<u32> = top
        .remove("outputs")
        .map(|v| serde_json::from_value(v).map_err(|e| field_err("outputs", e)))
        .transpose()?
        .unwrap_or_default();
    let training: TrainingJson = top
        .remove("training")
        .map(|v| serde_json::from_value(v).map_err(|e| field_err("training", e)))
        .transpose()?
        .unwrap_or_default();
    let annotations: Vec<Annotation> = top
        .remove("annotations")
        .map(|v| serde_json::from_value(v).map_err(|e| field_err("annotations", e)))
        .transpose()?
        .unwrap_or_default();
    if let Some(k) = top.keys().next() {
        return Err(field_err(k, "unknown top-level field (expected format, version, name, mesh, nodes, outputs, training, annotations)"));
    }

    let mut parsed: Vec<(NodeIn, Op)> = Vec::with_capacity(raw_nodes.len());
    for (i, raw) in raw_nodes.into_iter().enumerate() {
        parsed.push(parse_node(i, raw)?);
    }
    // Resolve ids.
    let mut by_id: HashMap<u32, usize> = HashMap::with_capacity(parsed.len());
    for (i, (n, _)) in parsed.iter().enumerate() {
        if let Some(j) = by_id.insert(n.id, i) {
            return Err(IrError::Graph(format!(
                "id {} is used by node `{}` (nodes[{j}]) and node `{}` (nodes[{i}])",
                n.id, parsed[j].0.name, n.name
            )));
        }
    }
    for (n, op) in &parsed {
        for &o in &n.operands {
            if !by_id.contains_key(&o) {
                return Err(IrError::node(
                    &n.name,
                    op.name(),
                    format!("operand id {o} does not name any node"),
                ));
            }
        }
    }
    let order = topological_order(&parsed, &by_id)?;
    let mut new_index = vec![0u32; parsed.len()];
    for (k, &i) in order.iter().enumerate() {
        new_index[i] = k as u32;
    }
    let remap = |id: u32| ValueId(new_index[by_id[&id]]);
    let remap_checked = |id: u32, what: &str| -> Result<ValueId> {
        by_id
            .get(&id)
            .map(|&i| ValueId(new_index[i]))
            .ok_or_else(|| IrError::Graph(format!("{what} id {id} does not name any node")))
    };
    let mut slots: Vec<Option<(NodeIn, Op)>> = parsed.into_iter().map(Some).collect();
    let mut nodes = Vec::with_capacity(slots.len());
    for &i in &order {
        let (n, op) = slots[i]
            .take()
            .expect("invariant: each node is placed once");
        nodes.push(Node {
            operands: n.operands.iter().map(|&o| remap(o)).collect(),
            name: n.name,
            op,
            ty: n.ty,
            role: n.role,
            phase: n.phase,
            recompute: n.recompute,
        });
    }
    let g = Graph {
        name,
        nodes,
        outputs: outputs
            .iter()
            .map(|&o| remap_checked(o, "output"))
            .collect::<Result<_>>()?,
        mesh,
        annotations,
        training: Training {
            loss: training
                .loss
                .map(|l| remap_checked(l, "training.loss"))
                .transpose()?,
            gradients: training
                .gradients
                .iter()
                .map(|&(a, b)| {
                    Ok((
                        remap_checked(a, "training.gradients")?,
                        remap_checked(b, "training.gradients")?,
                    ))
                })
                .collect::<Result<_>>()?,
            updates: training
                .updates
                .iter()
                .map(|&(a, b)| {
                    Ok((
                        remap_checked(a, "training.updates")?,
                        remap_checked(b, "training.updates")?,
                    ))
                })
                .collect::<Result<_>>()?,
        },
    };
    verify(&g)?;
    Ok(g)
}

fn parse_node(i: usize, raw: Value) -> Result<(NodeIn, Op)> {
    let mut obj = match raw {
        Value::Object(m) => m,
        _ => return Err(IrError::Format(format!("nodes[{i}]: expected an object"))),
    };
    let label = match (obj.get("name").and_then(Value::as_str), obj.get("id")) {
        (Some(n), _) => format!("nodes[{i}] (`{n}`)"),
        (None, Some(id)) => format!("nodes[{i}] (id {id})"),
        _ => format!("nodes[{i}]"),
    };
    if !obj.contains_key("op") {
        return Err(IrError::Format(format!("{label}: missing field `op`")));
    }
    let mut node_fields = Map::new();
    for k in [
        "id",
        "name",
        "operands",
        "type",
        "role",
        "phase",
        "recompute",
    ] {
        if let Some(v) = obj.remove(k) {
            node_fields.insert(k.to_string(), v);
        }
    }
    let node: NodeIn = serde_json::from_value(Value::Object(node_fields))
        .map_err(|e| IrError::Format(format!("{label}: {e}")))?;
    let op: Op = serde_json::from_value(Value::Object(obj))
        .map_err(|e| IrError::Format(format!("{label}: {e}")))?;
    Ok((node, op))
}

/// Kahn's algorithm, stable (file order wins among ready nodes); a cycle is an error naming a node on it.
fn topological_order(nodes: &[(NodeIn, Op)], by_id: &HashMap<u32, usize>) -> Result<Vec<usize>> {
    let n = nodes.len();
    let mut indegree = vec![0usize; n];
    let mut users = vec![Vec::new(); n];
    for (i, (node, _)) in nodes.iter().enumerate() {
        for o in &node.operands {
            let j = by_id[o];
            indegree[i] += 1;
            users[j].push(i);
        }
    }
    let mut ready: std::collections::BTreeSet<usize> =
        (0..n).filter(|&i| indegree[i] == 0).collect();
    let mut order = Vec::with_capacity(n);
    while let Some(i) = ready.pop_first() {
        order.push(i);
        for &u in &users[i] {
            indegree[u] -= 1;
            if indegree[u] == 0 {
                ready.insert(u);
            }
        }
    }
    if order.len() != n {
        let stuck = (0..n)
            .find(|&i| indegree[i] > 0)
            .expect("invariant: some node is stuck");
        return Err(IrError::Graph(format!(
            "the graph has a cycle through node `{}` (id {})",
            nodes[stuck].0.name, nodes[stuck].0.id
        )));
    }
    Ok(order)
}
