//! The XLA HLO text importer: how JAX and TensorFlow programs reach shardc.
//!
//! [`import`] reads an HLO module (`jax.jit(f).lower(...).as_text(dialect="hlo")`, or the
//! text of XLA's tests and dumps) into a [`Graph`], one node per ENTRY instruction named after it,
//! with the module's `sharding={...}` attributes kept as [`HloSharding`]s and, where one mesh fits
//! them all, as annotations on that mesh. [`print_with_shardings`] writes the module back with a
//! sharding on every instruction, as XLA's after-propagation dump does. [`print_graph`] writes
//! any graph (from ONNX, JSON, the zoo) as a module of its own, one instruction per node.
//!
//! ```
//! let hlo = "HloModule m\nENTRY e {\n  p = f32[8,4] parameter(0), sharding={devices=[2,1]0,1}\n  ROOT n = f32[8,4] negate(p)\n}\n";
//! let imp = shardc_ir::hlo::import(hlo).unwrap();
//! assert_eq!(imp.graph.nodes[1].name, "n");
//! assert_eq!(imp.graph.mesh.as_ref().unwrap().to_string(), "x0=2");
//! let s = imp.graph.annotations[0].sharding.to_jax().unwrap();
//! assert_eq!(s, "P('x0', None)");
//! ```

mod attrs;
mod emit;
mod lower;
mod print;
mod text;

use std::collections::BTreeMap;

use crate::error::IrError;
use crate::graph::{Graph, ValueId};
use crate::mesh::Mesh;
use crate::sharding::{common_mesh, AllowedDirection, Annotation, HloSharding};
use crate::verify::verify;

pub use emit::print_graph;
use lower::Fixup;
pub use lower::Lowered;
pub use print::print_with_shardings;
pub use text::{parse_module, Computation, HloModule, HloType, Instruction};

/// An imported HLO module.
#[derive(Clone, Debug)]
pub struct HloImport {
    /// One node per ENTRY instruction (tuples and get-tuple-element excepted; a variadic sort
    /// or scatter gives one node per result, `NAME.0`, `NAME.1`, ...; a gather or
    /// scatter whose indices carry a size-1 index vector dim adds a reshape node
    /// `NAME.indices`, one with iota index elements a slice node `NAME.indices` that drops them).
    /// `mesh` and `annotations` are set where the shardings allow.
    pub graph: Graph,
    /// The `sharding={...}` the module gave each node, indexed by `ValueId`.
    pub shardings: Vec<Option<HloSharding>>,
    /// The module as parsed, for printing back.
    pub module: HloModule,
    /// What each ENTRY instruction became, by instruction name.
    pub values: BTreeMap<String, Lowered>,
    /// The `sharding={...}` of tuple-shaped instructions, by name.
    pub tuple_shardings: BTreeMap<String, HloSharding>,
    /// Shardings that could not become annotations, and why.
    pub notes: Vec<String>,
    /// Values that share one sharding: the node names of each `shard_as N` / `shard_like N`
    /// group, in order of group kind and number.
    pub shard_groups: Vec<Vec<String>>,
    /// Propagation barriers (XLA's `ShardBarrierFrom`/`To` custom-calls, imported as copies):
    /// node name and the way shardings may cross.
    pub barriers: Vec<(String, AllowedDirection)>,
}

impl HloImport {
    /// The node an instruction became, if it became one node.
    pub fn value(&self, instruction: &str) -> Option<ValueId> {
        match self.values.get(instruction.trim_start_matches('%'))? {
            Lowered::Node(v) => Some(*v),
            Lowered::Tuple(_) => None,
        }
    }
}

/// Imports HLO module text. Unsupported HLO gives an error naming the instruction and opcode.
pub fn import(text: &str) -> Result<HloImport, IrError> {
    import_module(parse_module(text)?)
}

/// Imports a parsed HLO module (what [`import`] does after parsing; the StableHLO reader
/// builds the module itself).
pub fn import_module(module: HloModule) -> Result<HloImport, IrError> {
    let (mut imp, fixups) = import_unresolved(module)?;
    finish_manual(&mut imp, &fixups)?;
    Ok(imp)
}

/// Fills in the mesh axes of the module's manual regions (once the mesh and annotations are
/// final) and verifies the graph.
pub(crate) fn finish_manual(
    imp: &mut HloImport,
    fixups: &[(ValueId, Fixup)],
) -> Result<(), IrError> {
    lower::resolve_manual(&mut imp.graph, fixups)?;
    verify(&imp.graph)
}

/// [`import_module`] up to the manual regions' axes; the graph is not verified yet.
pub(crate) fn import_unresolved(
    module: HloModule,
) -> Result<(HloImport, Vec<(ValueId, Fixup)>), IrError> {
    let name = module
        .header
        .trim_start_matches("HloModule")
        .split(',')
        .next()
        .map_or("hlo", str::trim)
        .to_string();
    let mut l = lower::Lowering::new(&module, &name);
    l.run()?;
    let mut shardings = vec![None; l.graph.len()];
    let mut tuple_shardings = BTreeMap::new();
    let mut groups: BTreeMap<(bool, u64), Vec<String>> = BTreeMap::new();
    for (inst, s) in std::mem::take(&mut l.shardings) {
        match &l.values[&inst] {
            // An instruction that aliases a node (get-tuple-element, call) annotates it unless
            // the node's own instruction has a sharding.
            Lowered::Node(v) => {
                if let HloSharding::Grouped(_, g) = &s {
                    let name = l.graph.nodes[v.index()].name.clone();
                    groups.entry((!g.shard_as, g.id)).or_default().push(name);
                }
                if l.graph.nodes[v.index()].name == inst || shardings[v.index()].is_none() {
                    shardings[v.index()] = Some(s);
                }
            }
            Lowered::Tuple(_) => {
                tuple_shardings.insert(inst, s);
            }
        }
    }
    // A tuple's sharding gives each element without a sharding of its own (a tuple-shaped
    // parameter's elements, say) theirs.
    for (inst, s) in &tuple_shardings {
        distribute(&l.values[inst], s.ungrouped(), &mut shardings);
    }
    let mut graph = l.graph;
    let values = l.values;
    let barriers = l.barriers;
    let mut open = vec![Vec::new(); graph.len()];
    for (inst, dims) in l.open_dims {
        if let Some(Lowered::Node(v)) = values.get(&inst) {
            open[v.index()] = dims;
        }
    }
    let devices = num_partitions(&module.header);
    let notes = annotate(&mut graph, &shardings, &tuple_shardings, &open, devices);
    let fixups = l.manual;
    let imp = HloImport {
        graph,
        shardings,
        module,
        values,
        tuple_shardings,
        notes,
        shard_groups: groups.into_values().collect(),
        barriers,
    };
    Ok((imp, fixups))
}

/// The module's `num_partitions=N` (1 when the header does not say).
fn num_partitions(header: &str) -> u64 {
    header
        .split(',')
        .filter_map(|f| f.trim().strip_prefix("num_partitions="))
        .find_map(|n| n.trim().parse().ok())
        .filter(|&n| n >= 1)
        .unwrap_or(1)
}

/// XLA writes a tuple's sharding as one entry per leaf, nested tuples flattened.
fn distribute(l: &Lowered, s: &HloSharding, shardings: &mut [Option<HloSharding>]) {
    let mut nodes = Vec::new();
    lower::flatten(l, &mut nodes);
    let parts: Vec<&HloSharding> = match s {
        HloSharding::Tuple(parts) => parts.iter().map(HloSharding::ungrouped).collect(),
        s => vec![s; nodes.len()],
    };
    if parts.len() != nodes.len() {
        return;
    }
    for (v, p) in nodes.into_iter().zip(parts) {
        if shardings[v.index()].is_none() {
            shardings[v.index()] = Some(p.clone());
        }
    }
}

/// Sets the graph's mesh (one that every sharding of the module splits along) and turns each
/// node's sharding into an annotation; returns what could not be converted.
fn annotate(
    graph: &mut Graph,
    shardings: &[Option<HloSharding>],
    tuple_shardings: &BTreeMap<String, HloSharding>,
    open: &[Vec<usize>],
    devices: u64,
) -> Vec<String> {
    let all: Vec<&HloSharding> = shardings
        .iter()
        .flatten()
        .chain(tuple_shardings.values())
        .collect();
    let mesh = match common_mesh(&all) {
        Ok(Some(m)) => m,
        Ok(None) if all.is_empty() => return Vec::new(),
        // Only `{replicated}`/`{maximal}` shardings: one axis over the module's partitions, so
        // that the module still propagates (every value replicated, or split as it allows).
        Ok(None) => match Mesh::new(&[("x0", devices)]) {
            Ok(m) => m,
            Err(e) => return vec![format!("no mesh for {devices} partitions: {e}")],
        },
        Err(e) => return vec![format!("no mesh fits every sharding of the module: {e}")],
    };
    let mut notes = Vec::new();
    for (i, s) in shardings.iter().enumerate() {
        let Some(s) = s else { continue };
        let node = &graph.nodes[i];
        match s.to_sharding(&mesh, node.ty.rank()) {
            Ok(mut sharding) => {
                for &d in &open[i] {
                    match sharding.dims.get_mut(d) {
                        Some(dim) => dim.open = true,
                        None => notes.push(format!(
                            "`{}`: unspecified dim {d} is out of range for rank {}",
                            node.name,
                            node.ty.rank()
                        )),
                    }
                }
                graph.annotations.push(Annotation {
                    value: node.name.clone(),
                    sharding,
                    priority: 0,
                })
            }
            Err(e) => notes.push(format!("`{}`: no annotation: {e}", node.name)),
        }
    }
    graph.mesh = Some(mesh);
    notes
}
