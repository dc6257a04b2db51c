//! Partitioning each pipeline stage's programs over the stage's submesh: the same SPMD
//! partitioner as for a whole graph, run on the stage's forward, backward, backward-input and
//! backward-weight graphs (`cut_stages`) with shardings that agree where the programs meet.
//!
//! Where programs meet, shardings are pinned so that the pipeline runtime can move local shards
//! without resharding: every input a stage's backward programs share with its forward
//! (parameters, data, received activations) keeps the forward's sharding, so one set of local
//! shards feeds all four; a boundary value keeps the sharding its sender's forward gives it on
//! the receiving stage, and its gradient (the backward's input `dy` on the sender, the
//! backward's output `dx` on the receiver) takes the same sharding. Device `p` of one stage's
//! submesh then sends its local shard to device `p` of the next (the submeshes have one shape).
//! The first stage's forward is propagated from the caller's annotations alone; every later one
//! starts from its received activations' shardings as well.

use std::collections::BTreeMap;

use shardc_ir::{Annotation, Graph, Mesh, Sharding, ValueId};

use crate::error::{CodegenError, Result};
use crate::program::SpmdProgram;
use crate::stage::StageProgram;

/// One stage's four programs partitioned over the stage's submesh.
#[derive(Clone, Debug)]
pub struct SpmdStage {
    /// Forward, in the input and output order of [`StageProgram::forward`].
    pub forward: SpmdProgram,
    /// Full backward ([`StageProgram::backward`]).
    pub backward: SpmdProgram,
    /// Backward-input ([`StageProgram::backward_input`]).
    pub backward_input: SpmdProgram,
    /// Backward-weight ([`StageProgram::backward_weight`]); its outputs' shardings say how to
    /// reassemble the parameter gradients.
    pub backward_weight: SpmdProgram,
}

/// Partitions every stage of `stages` over `mesh` (each stage's submesh; they all have its
/// shape). `annotations` (value name → sharding, e.g. Megatron's on the weights) apply to the
/// values of that name in each stage's forward; names a stage lacks are skipped.
pub fn partition_stages(
    stages: &[StageProgram],
    mesh: &Mesh,
    annotations: &[Annotation],
) -> Result<Vec<SpmdStage>> {
    let mut sent: Vec<Sharding> = Vec::new();
    let mut out = Vec::with_capacity(stages.len());
    for (s, st) in stages.iter().enumerate() {
        let spmd = partition_stage(st, mesh, annotations, &sent)
            .map_err(|e| CodegenError::Data(format!("pipeline stage {s}: {e}")))?;
        sent = spmd
            .forward
            .outputs
            .iter()
            .map(|o| o.sharding.clone())
            .collect();
        out.push(spmd);
    }
    Ok(out)
}

/// Partitions one stage; `received[k]` is the sharding its `k`-th boundary input arrives in
/// (empty on the first stage).
fn partition_stage(
    st: &StageProgram,
    mesh: &Mesh,
    annotations: &[Annotation],
    received: &[Sharding],
) -> Result<SpmdStage> {
    let fwd_inputs: Vec<ValueId> = st.forward.inputs().collect();
    if fwd_inputs.len() != st.inputs.len() + st.boundary_in.len() {
        return Err(CodegenError::Data(format!(
            "the forward takes {} inputs, the stage lists {} own and {} received",
            fwd_inputs.len(),
            st.inputs.len(),
            st.boundary_in.len()
        )));
    }
    if received.len() != st.boundary_in.len() {
        return Err(CodegenError::Data(format!(
            "{} boundary shardings for {} received activations",
            received.len(),
            st.boundary_in.len()
        )));
    }
    // The forward: the caller's annotations, the received activations as they arrive.
    let mut pins = Pins::default();
    for a in annotations {
        if let Some(v) = find(&st.forward, &a.value) {
            pins.set(&st.forward, v, a.sharding.clone());
        }
    }
    for (&v, sh) in fwd_inputs[st.inputs.len()..].iter().zip(received) {
        pins.set(&st.forward, v, sh.clone());
    }
    let forward = partition_pinned(&st.forward, mesh, &pins)?;
    if forward.inputs.len() != fwd_inputs.len()
        || forward
            .inputs
            .iter()
            .zip(&fwd_inputs)
            .any(|(i, &v)| i.source != v)
    {
        return Err(CodegenError::Data(
            "the partitioned forward does not keep the stage's input order (invariant)".into(),
        ));
    }
    // The backwards share the forward's inputs (in its order) and add one `dy` per boundary
    // output, sharded as that output; the received activations' gradients go back sharded as
    // the activations came.
    let shared: Vec<Sharding> = forward.inputs.iter().map(|i| i.sharding.clone()).collect();
    let dy: Vec<Sharding> = match st.backward.inputs().count().checked_sub(shared.len()) {
        Some(0) => Vec::new(),
        Some(n) if n == forward.outputs.len() => {
            forward.outputs.iter().map(|o| o.sharding.clone()).collect()
        }
        _ => {
            return Err(CodegenError::Data(format!(
                "the backward takes {} inputs; the forward's {} and one gradient per output ({}) were expected",
                st.backward.inputs().count(),
                shared.len(),
                forward.outputs.len()
            )))
        }
    };
    let backward_pins = |g: &Graph, outputs_dx: bool| -> Pins {
        let mut p = Pins::default();
        for (v, sh) in g.inputs().zip(shared.iter().chain(&dy)) {
            p.set(g, v, sh.clone());
        }
        if outputs_dx {
            for (&v, sh) in g.outputs.iter().zip(received) {
                p.set(g, v, sh.clone());
            }
        }
        p
    };
    let backward = partition_pinned(&st.backward, mesh, &backward_pins(&st.backward, true))?;
    let backward_input = partition_pinned(
        &st.backward_input,
        mesh,
        &backward_pins(&st.backward_input, true),
    )?;
    let backward_weight = partition_pinned(
        &st.backward_weight,
        mesh,
        &backward_pins(&st.backward_weight, false),
    )?;
    let spmd = SpmdStage {
        forward,
        backward,
        backward_input,
        backward_weight,
    };
    check_agreement(&spmd, received)?;
    Ok(spmd)
}

/// Checks what the runtime relies on: the backwards read their inputs as the forward does, and
/// the activations' gradients leave as the activations came.
fn check_agreement(s: &SpmdStage, received: &[Sharding]) -> Result<()> {
    for (what, p) in [
        ("backward", &s.backward),
        ("backward-input", &s.backward_input),
        ("backward-weight", &s.backward_weight),
    ] {
        for (a, b) in s.forward.inputs.iter().zip(&p.inputs) {
            if a.sharding != b.sharding {
                return Err(CodegenError::sharding(
                    &a.name,
                    format!(
                        "the {what} program reads it as {}, the forward as {}",
                        crate::sharding_text(&b.sharding),
                        crate::sharding_text(&a.sharding)
                    ),
                ));
            }
        }
    }
    for p in [&s.backward, &s.backward_input] {
        for (o, sh) in p.outputs.iter().zip(received) {
            if &o.sharding != sh {
                return Err(CodegenError::sharding(
                    &o.name,
                    format!(
                        "an activation's gradient leaves as {}, the activation came as {}",
                        crate::sharding_text(&o.sharding),
                        crate::sharding_text(sh)
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Shardings fixed on values of one graph, by value.
#[derive(Default)]
struct Pins(BTreeMap<ValueId, (String, Sharding)>);

impl Pins {
    fn set(&mut self, g: &Graph, v: ValueId, sharding: Sharding) {
        self.0.insert(v, (g.node(v).name.clone(), sharding));
    }
}

fn find(g: &Graph, name: &str) -> Option<ValueId> {
    g.ids().find(|&v| g.node(v).name == name)
}

/// Propagates `pins` through `g` on `mesh` and partitions it.
fn partition_pinned(g: &Graph, mesh: &Mesh, pins: &Pins) -> Result<SpmdProgram> {
    let annotations: Vec<Annotation> = pins
        .0
        .values()
        .map(|(name, sharding)| Annotation {
            value: name.clone(),
            sharding: closed(sharding),
            priority: 0,
        })
        .collect();
    let sharded = shardc_sharding::propagate(g, mesh, &annotations)
        .map_err(|e| CodegenError::sharding(&g.name, e.to_string()))?;
    let mut assignment = sharded.assignment;
    // Pinned values keep their sharding exactly: the partitioner reshards around them.
    for (&v, (_, sh)) in &pins.0 {
        assignment.shardings[v.index()] = closed(sh);
    }
    crate::partition(g, &assignment)
}

/// The sharding with every dim closed (no further refinement).
fn closed(s: &Sharding) -> Sharding {
    let mut s = s.clone();
    for d in &mut s.dims {
        d.open = false;
    }
    s
}
