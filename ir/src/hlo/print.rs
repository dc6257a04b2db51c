//! The module printed back with a sharding on every ENTRY instruction, in XLA's own text form.

use std::fmt::Write;

use crate::error::IrError;
use crate::sharding::HloSharding;

use super::lower::Lowered;
use super::text::Instruction;
use super::HloImport;

/// Attributes XLA prints after `sharding=`; a new sharding goes before the first of them.
const AFTER_SHARDING: [&str; 4] = [
    "metadata",
    "frontend_attributes",
    "backend_config",
    "statistics",
];

/// The module text of `import` with `sharding={...}` on every ENTRY instruction (replacing any
/// it had), as XLA's after-propagation dump prints it. `shardings[v]` is the sharding of node
/// `v` (`None`: the instruction prints without one, as XLA leaves some scalar constants);
/// tuples get the tuple of their elements' shardings. Called computations (reductions'
/// `to_apply`, inlined calls) print unchanged.
pub fn print_with_shardings(
    import: &HloImport,
    shardings: &[Option<HloSharding>],
) -> Result<String, IrError> {
    if shardings.len() != import.graph.len() {
        return Err(IrError::Graph(format!(
            "{} shardings given for a graph of {} nodes",
            shardings.len(),
            import.graph.len()
        )));
    }
    let mut out = String::new();
    if !import.module.header.is_empty() {
        out.push_str(&import.module.header);
        out.push_str("\n\n");
    }
    for (k, c) in import.module.computations.iter().enumerate() {
        if k > 0 {
            out.push('\n');
        }
        if c.entry {
            out.push_str("ENTRY ");
        }
        out.push_str(&c.name_text);
        if !c.signature.is_empty() {
            out.push(' ');
            out.push_str(&c.signature);
        }
        out.push_str(" {\n");
        for inst in &c.instructions {
            let s = if c.entry {
                import
                    .values
                    .get(&inst.name)
                    .map(|l| sharding_of(l, shardings))
            } else {
                // Called computations keep what they had.
                None
            };
            print_instruction(&mut out, inst, s);
        }
        out.push_str("}\n");
    }
    Ok(out)
}

fn sharding_of(l: &Lowered, shardings: &[Option<HloSharding>]) -> Option<HloSharding> {
    match l {
        Lowered::Node(v) => shardings[v.index()].clone(),
        Lowered::Tuple(v) => v
            .iter()
            .map(|e| sharding_of(e, shardings))
            .collect::<Option<Vec<_>>>()
            .map(HloSharding::Tuple),
    }
}

/// `sharding`: `None` keeps the instruction's own attribute, `Some(None)` drops it.
fn print_instruction(out: &mut String, inst: &Instruction, sharding: Option<Option<HloSharding>>) {
    let root = if inst.root { "ROOT " } else { "" };
    // invariant: writing to a String cannot fail.
    let _ = write!(out, "  {root}{} = ", inst.name_text);
    if !inst.type_text.is_empty() {
        let _ = write!(out, "{} ", inst.type_text);
    }
    let _ = write!(out, "{}({})", inst.opcode, inst.args);
    let mut attrs: Vec<(String, String)> = inst
        .attrs
        .iter()
        .filter(|(k, _)| sharding.is_none() || k != "sharding")
        .cloned()
        .collect();
    if let Some(Some(s)) = sharding {
        let at = attrs
            .iter()
            .position(|(k, _)| AFTER_SHARDING.contains(&k.as_str()))
            .unwrap_or(attrs.len());
        attrs.insert(at, ("sharding".into(), s.to_string()));
    }
    for (k, v) in attrs {
        let _ = write!(out, ", {k}={v}");
    }
    out.push('\n');
}
