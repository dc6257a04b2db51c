//! The planner's graph-path pricing of one (mesh, micro-batch count): on a reduced graph of the
//! layers that set the pace ([`crate::layers`]) when the model's layers are copies of one
//! another, else on the whole graph.

use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Instant;

use shardc_cost_model::{
    graph_step, graph_step_staged, pipeline_stages, Cluster, CommUse, GraphOptions, StepWork,
};
use shardc_ir::{Graph, Mesh, ShardingAssignment, ValueId};

use crate::error::{Error, Result};
use crate::layers::{reduce, LayerClasses, Reduced};
use crate::planner::megatron_assignment;

/// How the planner prices candidates.
pub(crate) enum Pricing<'g> {
    /// The whole graph, with the Megatron-style shardings and their collectives.
    Whole {
        base: ShardingAssignment,
        templates: CommTemplates,
        /// Each node's stage with one stage per layer, found on first use.
        per_layer: Option<Rc<Vec<u32>>>,
    },
    /// Representative layers; reduced graphs cached by pipeline size.
    Classes {
        classes: Box<LayerClasses<'g>>,
        staged: BTreeMap<u64, Rc<Staged>>,
        /// Each node's stage with one stage per layer (see [`stage`]), found once.
        per_layer: Option<Vec<u32>>,
    },
}

/// The reduced graph for one pipeline size.
pub(crate) struct Staged {
    reduced: Reduced,
    /// Each of its nodes' stage in the whole pipeline.
    stage_of: Vec<u32>,
    /// Each of its nodes' stage with one stage per layer (its layer's index).
    layer_of: Vec<u32>,
    /// Layers of the whole graph not in it.
    dropped: u64,
}

/// One mesh's graph, shardings and collectives, ready to price at any micro-batch count.
pub(crate) struct MeshPricing<'p> {
    graph: &'p Graph,
    staged: Option<Rc<Staged>>,
    /// With the whole graph: each node's stage with one stage per layer.
    per_layer: Option<Rc<Vec<u32>>>,
    /// Numbered layers of the whole graph.
    layers: u64,
    a: ShardingAssignment,
    comms: Vec<CommUse>,
    /// One middle layer's FLOPs (per device as run, model) on this mesh.
    layer_flops: (f64, f64),
}

/// Seconds spent building the pricing, by phase.
#[derive(Default)]
pub(crate) struct Setup {
    pub propagate_s: f64,
    pub collectives_s: f64,
}

impl<'g> Pricing<'g> {
    /// Layer classes where the layers allow it (unless `whole`), else the whole graph.
    pub fn of(g: &'g Graph, whole: bool) -> Result<(Pricing<'g>, Setup)> {
        let mut setup = Setup::default();
        let clock = Instant::now();
        if !whole {
            if let Some(classes) = LayerClasses::of(g)? {
                setup.propagate_s = classes.propagate_s;
                setup.collectives_s = clock.elapsed().as_secs_f64() - classes.propagate_s;
                return Ok((
                    Pricing::Classes {
                        classes: Box::new(classes),
                        staged: BTreeMap::new(),
                        per_layer: None,
                    },
                    setup,
                ));
            }
        }
        let base = megatron_assignment(g)?;
        setup.propagate_s = clock.elapsed().as_secs_f64();
        let clock = Instant::now();
        let templates = CommTemplates::of(g, &base)?;
        setup.collectives_s = clock.elapsed().as_secs_f64();
        Ok((
            Pricing::Whole {
                base,
                templates,
                per_layer: None,
            },
            setup,
        ))
    }

    /// Whether candidates are priced on representative layers.
    pub fn by_classes(&self) -> bool {
        matches!(self, Pricing::Classes { .. })
    }

    /// The shardings and collectives on `mesh` (axes `pp`, `dp`, `tp`).
    pub fn on<'p>(&'p mut self, g: &'p Graph, mesh: &Mesh) -> Result<MeshPricing<'p>> {
        match self {
            Pricing::Whole {
                base,
                templates,
                per_layer,
            } => {
                let a = ShardingAssignment {
                    mesh: mesh.clone(),
                    shardings: base.shardings.clone(),
                };
                let comms = templates.on(g, &a)?;
                let layers = layer_count(g);
                let per_layer = per_layer
                    .get_or_insert_with(|| Rc::new(pipeline_stages(g, layers)))
                    .clone();
                Ok(MeshPricing {
                    graph: g,
                    staged: None,
                    per_layer: Some(per_layer),
                    layers,
                    a,
                    comms,
                    layer_flops: (0.0, 0.0),
                })
            }
            Pricing::Classes {
                classes,
                staged,
                per_layer,
            } => {
                let pp = mesh.axis_size("pp").unwrap_or(1);
                let st = match staged.get(&pp) {
                    Some(s) => s.clone(),
                    None => {
                        let per_layer = per_layer
                            .get_or_insert_with(|| pipeline_stages(g, classes.layers.len() as u64));
                        let s = Rc::new(stage(g, classes, per_layer, pp)?);
                        staged.insert(pp, s.clone());
                        s
                    }
                };
                let (a, comms) = classes.on(&st.reduced, mesh);
                let layer_flops = classes.layer_flops(mesh)?;
                Ok(MeshPricing {
                    graph: g,
                    staged: Some(st),
                    per_layer: None,
                    layers: classes.layers.len() as u64,
                    a,
                    comms,
                    layer_flops,
                })
            }
        }
    }

    /// The whole graph's shardings on `mesh`.
    pub fn full_assignment(&self, mesh: &Mesh) -> ShardingAssignment {
        match self {
            Pricing::Whole { base, .. } => ShardingAssignment {
                mesh: mesh.clone(),
                shardings: base.shardings.clone(),
            },
            Pricing::Classes { classes, .. } => classes.full_assignment(mesh),
        }
    }
}

impl MeshPricing<'_> {
    /// The graph path's step at `go`'s micro-batch count.
    pub fn step(&self, cluster: &Cluster, go: &GraphOptions) -> Result<StepWork> {
        let mesh = &self.a.mesh;
        let err = |e: shardc_cost_model::CostError| {
            Error::Input(format!(
                "mesh {mesh}, {} micro-batches: {e}",
                go.micro_batches
            ))
        };
        let Some(st) = &self.staged else {
            return graph_step(self.graph, &self.a, &self.comms, cluster, go).map_err(err);
        };
        let mut w = graph_step_staged(
            &st.reduced.graph,
            &self.a,
            &self.comms,
            cluster,
            go,
            &st.stage_of,
        )
        .map_err(err)?;
        // The step's FLOP totals count every layer; the reduced graph lacks the dropped ones.
        let (hw, model) = self.layer_flops;
        let dropped = st.dropped as f64;
        w.hardware_flops += dropped * hw / w.stages.max(1) as f64;
        w.model_flops += dropped * model / mesh.num_devices() as f64;
        Ok(w)
    }
}

impl MeshPricing<'_> {
    /// The graph path's step with `cuts[s]` layers on stage `s` (their sum the layer count)
    /// instead of the even split; with representative layers only the stages whose layers
    /// the reduced graph holds (the even split's first and last, whole) are priced as in the
    /// whole graph. The stage of a node follows from its layer's by the monotone map of the
    /// cuts, as [`stage`]'s even split does.
    pub fn step_cut(&self, cluster: &Cluster, go: &GraphOptions, cuts: &[u64]) -> Result<StepWork> {
        let mesh = &self.a.mesh;
        if cuts.iter().sum::<u64>() != self.layers
            || cuts.len() as u64 != mesh.axis_size("pp").unwrap_or(1)
        {
            return Err(Error::Input(format!(
                "stage cuts {cuts:?} do not split {} layers over mesh {mesh}'s pp stages",
                self.layers
            )));
        }
        let mut of = Vec::with_capacity(self.layers as usize);
        for (s, &n) in cuts.iter().enumerate() {
            of.extend(std::iter::repeat(s as u32).take(n as usize));
        }
        let map = |l: &u32| {
            of.get(*l as usize)
                .copied()
                .unwrap_or((cuts.len() - 1) as u32)
        };
        let err = |e: shardc_cost_model::CostError| {
            Error::Input(format!("mesh {mesh}, cuts {cuts:?}: {e}"))
        };
        let (graph, layer_of) = match (&self.staged, &self.per_layer) {
            (Some(st), _) => (&st.reduced.graph, &st.layer_of),
            (None, Some(per_layer)) => (self.graph, &**per_layer),
            (None, None) => return Err(Error::Input("no per-layer stages".into())),
        };
        let stage_of: Vec<u32> = layer_of.iter().map(map).collect();
        graph_step_staged(graph, &self.a, &self.comms, cluster, go, &stage_of).map_err(err)
    }
}

/// Numbered layers of `g` (`layers.N`).
fn layer_count(g: &Graph) -> u64 {
    g.nodes
        .iter()
        .filter_map(|n| n.layer())
        .collect::<std::collections::BTreeSet<_>>()
        .len() as u64
}

/// The reduced graph for `pp` stages: the layers of the first and last stage, and of the
/// first middle stage with the most layers if that is more than the first stage's (with
/// [`pipeline_stages`]' split the first stage has the most, so this is a safeguard).
///
/// Stages come from `per_layer`, [`pipeline_stages`] with one stage per layer: every rule
/// there (a layer's stage; the min of users' or max of operands' stages; the stage of the
/// forward node a name points to) commutes with the monotone map from layer `i` to stage
/// `⌊i·pp/L⌋`, so mapping `per_layer` gives `pipeline_stages(g, pp)` without another pass over
/// the whole graph (`tests/planner.rs` checks it).
fn stage(g: &Graph, classes: &LayerClasses, per_layer: &[u32], pp: u64) -> Result<Staged> {
    let l = classes.layers.len() as u64;
    let stage_of: Vec<u32> = per_layer
        .iter()
        .map(|&i| of_layer(u64::from(i), pp, l))
        .collect();
    let layers = &classes.layers;
    let mut layer_stage = vec![0u32; layers.len()];
    for (i, &l) in layers.of.iter().enumerate() {
        if (l as usize) < layers.len() {
            layer_stage[l as usize] = stage_of[i];
        }
    }
    let last = (pp.max(1) - 1) as u32;
    let mut count = vec![0u64; pp.max(1) as usize];
    for &s in &layer_stage {
        count[s as usize] += 1;
    }
    let middle = (1..last)
        .max_by_key(|&s| (count[s as usize], std::cmp::Reverse(s)))
        .filter(|&s| count[s as usize] > count[0]);
    let keep: Vec<bool> = layer_stage
        .iter()
        .map(|&s| s == 0 || s == last || Some(s) == middle)
        .collect();
    let reduced = reduce(g, layers, &classes.names, &keep).ok_or_else(|| {
        Error::Input(format!(
            "`{}`: the layers of {pp} pipeline stages could not be cut out of the graph",
            g.name
        ))
    })?;
    let dropped = keep.iter().filter(|k| !**k).count() as u64;
    let stage_of = reduced.origin.iter().map(|o| stage_of[o.index()]).collect();
    let layer_of = reduced
        .origin
        .iter()
        .map(|o| per_layer[o.index()])
        .collect();
    Ok(Staged {
        reduced,
        stage_of,
        layer_of,
        dropped,
    })
}

/// The graph path's step of the Megatron-style sharding of `g` on `mesh` priced both ways:
/// on representative layers (as the planner does) and on the whole graph. `None` for the
/// first when the layers are not copies of one another. Tests compare the two.
pub fn step_work_both_ways(
    g: &Graph,
    mesh: &Mesh,
    cluster: &Cluster,
    go: &GraphOptions,
) -> Result<(Option<StepWork>, StepWork)> {
    let (mut classes, _) = Pricing::of(g, false)?;
    let fast = if classes.by_classes() {
        Some(classes.on(g, mesh)?.step(cluster, go)?)
    } else {
        None
    };
    let (mut whole, _) = Pricing::of(g, true)?;
    let exact = whole.on(g, mesh)?.step(cluster, go)?;
    Ok((fast, exact))
}

/// The graph path's step of the Megatron-style sharding of the whole graph `g` on `mesh` with
/// `cuts[s]` layers on pipeline stage `s`: what a planner's uneven cuts are checked against.
pub fn step_work_with_cuts(
    g: &Graph,
    mesh: &Mesh,
    cluster: &Cluster,
    go: &GraphOptions,
    cuts: &[u64],
) -> Result<StepWork> {
    let (mut whole, _) = Pricing::of(g, true)?;
    let on = whole.on(g, mesh)?;
    on.step_cut(cluster, go, cuts)
}

/// The whole graph's Megatron-style shardings as the planner derives them from layer 1 of
/// its class graph, and as one propagation over the whole graph gives them (tests compare the
/// two). `None` for the first when the layers are not copies of one another.
pub fn megatron_assignment_both_ways(
    g: &Graph,
) -> Result<(Option<ShardingAssignment>, ShardingAssignment)> {
    let exact = megatron_assignment(g)?;
    let fast = LayerClasses::of(g)?.map(|c| c.full_assignment(&exact.mesh));
    Ok((fast, exact))
}

/// Layer `i` of `l`'s stage among `p`, as [`pipeline_stages`] splits them.
pub fn of_layer(i: u64, p: u64, l: u64) -> u32 {
    if p <= 1 || l == 0 {
        return 0;
    }
    (i * p / l).min(p - 1) as u32
}

/// The collectives the Megatron-style sharding needs, found once on the base mesh, each with the
/// value whose local shard it starts from: on a candidate mesh the same collectives run (the
/// shardings are the same; only the axis sizes differ) on that value's local shard under the
/// candidate's sizes (over an axis of size 1 it stays, as `required_collectives` keeps it). A collective whose operand is no
/// value's shard (a middle step of a multi-step resharding) makes every mesh take the exact,
/// slower path (`required_collectives` per mesh).
pub(crate) struct CommTemplates {
    /// Each collective and the value it moves; `None` when the exact path is needed.
    uses: Option<Vec<(CommUse, ValueId)>>,
}

impl CommTemplates {
    pub(crate) fn of(g: &Graph, base: &ShardingAssignment) -> Result<CommTemplates> {
        let comms = shardc_sharding::required_collectives(g, base).map_err(|e| {
            Error::Input(format!("collectives of the Megatron-style sharding: {e}"))
        })?;
        let uses = comms
            .into_iter()
            .map(|c| {
                let node = g.node(c.node);
                let value = std::iter::once(c.node)
                    .chain(node.operands.iter().copied())
                    .find(|&v| local_type(g, base, v) == c.local_operand)?;
                Some((c, value))
            })
            .collect();
        Ok(CommTemplates { uses })
    }

    /// The collectives on `a`'s mesh.
    pub(crate) fn on(&self, g: &Graph, a: &ShardingAssignment) -> Result<Vec<CommUse>> {
        let Some(uses) = &self.uses else {
            return shardc_sharding::required_collectives(g, a)
                .map_err(|e| Error::Input(format!("mesh {}: {e}", a.mesh)));
        };
        Ok(uses
            .iter()
            .map(|(c, v)| CommUse {
                local_operand: local_type(g, a, *v),
                ..c.clone()
            })
            .collect())
    }
}

/// `v`'s local (per-device) type under `a`.
pub(crate) fn local_type(g: &Graph, a: &ShardingAssignment, v: ValueId) -> shardc_ir::TensorType {
    let ty = g.ty(v);
    let s = &a.shardings[v.index()];
    let dims: Vec<u64> = ty
        .dims()
        .iter()
        .enumerate()
        .map(|(d, &n)| s.local_dim(&a.mesh, d, n))
        .collect();
    shardc_ir::TensorType::new(ty.dtype, dims)
}

/// The collectives of the Megatron-style sharding on `mesh` (axes `pp`, `dp`, `tp`) as the
/// planner derives them from its base mesh, and as `required_collectives` finds them on that
/// mesh directly (tests compare the two).
pub fn megatron_collectives(g: &Graph, mesh: &Mesh) -> Result<(Vec<CommUse>, Vec<CommUse>)> {
    let base = megatron_assignment(g)?;
    let a = ShardingAssignment {
        mesh: mesh.clone(),
        shardings: base.shardings.clone(),
    };
    let derived = CommTemplates::of(g, &base)?.on(g, &a)?;
    let exact = shardc_sharding::required_collectives(g, &a)
        .map_err(|e| Error::Input(format!("mesh {mesh}: {e}")))?;
    Ok((derived, exact))
}
