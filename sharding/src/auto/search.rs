//! The search around the ILP: mesh shapes (factorizations of the device count, the innermost
//! axes inside a node: "scale up before out"), ZeRO stage and micro-batch count; each candidate
//! priced by the cost model's whole-step estimate, the fastest that fits becoming the [`Plan`].
//!
//! The order is what keeps it fast: every mesh's model is built and its optimum without a
//! memory limit solved first (in parallel), and the meshes are searched in the order of that
//! optimum's model seconds. On a mesh, that optimum is the answer if it fits, and nothing on the
//! mesh beats the best plan found if its estimate does not. Under a binding limit ZeRO-3 is
//! searched first (its optimum without a limit usually fits), then ZeRO-2, unless the model's
//! bound under the limit at the most micro-batches (a bound for every count: fewer kept bytes,
//! the same seconds) is no faster, in the model, than a plan that fits on the mesh. Per
//! micro-batch count, a limited pick slower than the best plan found ends that count's search (a
//! tighter limit is slower yet), and the larger counts' too where the model's bound at the most
//! micro-batches is above its optimum without a limit (so the limit binds on the model there as
//! well) and no faster than that pick less the estimate's excess over the best plan.
//!
//! The bounds between meshes are the estimate's; within one mesh, where the picks come from one
//! model, the model's: a heuristic there (the estimate also prices overlap, fusion and the
//! transient peak, which the model does not), which the quality test checks against the
//! brute-force sweep and BENCHMARKS.md against the search without these bounds on ten GPT
//! configurations.

use std::collections::BTreeMap;
use std::time::Instant;

use rayon::prelude::*;

use shardc_cost_model::{Cluster, GraphOptions, Zero};
use shardc_ir::{Annotation, Graph, Mesh, Role, Sharding, ShardingAssignment};

use super::cost::{step_estimate, Pricing};
use super::layers::{self, Classes};
use super::model::{self, kept_values, StepOptions};
use super::plan::{Plan, PlanCluster, PlanCollective, PlanMemory, PlanValue, PLAN_FORMAT_VERSION};
use super::{fixed_choices, ilp, words, IlpSize, Solver};
use crate::collectives::required_collectives_unpaired;
use crate::error::{Result, ShardingError};

/// What [`plan`] may choose and what it must keep.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct PlanOptions {
    /// Shardings the plan keeps, on top of the graph's own annotations (a later annotation of a
    /// value replaces an earlier one).
    pub annotations: Vec<Annotation>,
    /// Bytes per device the plan may use (default and at most: the device's memory).
    pub memory_limit_bytes: Option<f64>,
    /// A fixed mesh shape, e.g. `[("dp", 32), ("tp", 8)]`, last axis innermost; the planner
    /// chooses the rest.
    pub mesh: Option<Vec<(String, u64)>>,
    /// Most mesh axes tried (default 2; 3 adds the 3-D factorizations).
    pub max_mesh_axes: usize,
    /// A fixed micro-batch count.
    pub micro_batches: Option<u64>,
    pub solver: Solver,
}

/// Where the search is, for a progress bar.
#[derive(Clone, Debug, PartialEq)]
pub struct PlanProgress {
    /// Meshes searched so far and in all.
    pub done: usize,
    pub total: usize,
    /// The mesh being searched.
    pub mesh: String,
}

/// Time per phase of one [`plan_with`] run (seconds) and the largest ILP solved. The meshes'
/// models are built and first solved on several threads, whose seconds the phases add: they
/// may sum to more than `total_s`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PlanTimings {
    /// Building the choices and edge costs (strategy enumeration).
    pub enumerate_s: f64,
    /// Building and solving the ILPs.
    pub solve_s: f64,
    /// Pricing candidates with the cost model's whole-step estimate.
    pub estimate_s: f64,
    /// The whole mesh search.
    pub total_s: f64,
    pub meshes: usize,
    pub solves: usize,
    pub largest: IlpSize,
    /// The largest relative gap of a Lagrangian or TRW-S solve (0: every solve exact).
    pub gap: f64,
}

impl PlanTimings {
    /// Adds another run's phases (from a search run on another thread) to these.
    fn absorb(&mut self, o: &PlanTimings) {
        self.enumerate_s += o.enumerate_s;
        self.solve_s += o.solve_s;
        self.estimate_s += o.estimate_s;
        self.solves += o.solves;
        self.note_size(&o.largest);
        self.gap = self.gap.max(o.gap);
    }

    /// Keeps `size` as the largest problem solved if it is larger.
    fn note_size(&mut self, size: &IlpSize) {
        let total = |s: &IlpSize| s.edge_variables + s.choice_variables + s.largest_table;
        if total(size) > total(&self.largest) {
            self.largest = *size;
        }
    }
}

/// Plans `graph` on `cluster`: the fastest predicted step that fits.
pub fn plan(graph: &Graph, cluster: &Cluster, opts: &PlanOptions) -> Result<Plan> {
    plan_with(graph, cluster, opts, &mut |_| {}).map(|(p, _)| p)
}

/// [`plan`], reporting progress per mesh and returning the time per phase.
pub fn plan_with(
    graph: &Graph,
    cluster: &Cluster,
    opts: &PlanOptions,
    progress: &mut dyn FnMut(PlanProgress),
) -> Result<(Plan, PlanTimings)> {
    let start = Instant::now();
    let mut timings = PlanTimings::default();
    let annotations = super::meshes::merged_annotations(graph, &opts.annotations);
    let meshes = super::meshes::candidate_meshes(cluster, opts, &annotations)?;
    let capacity = cluster.device.memory.capacity_bytes as f64;
    let limit = opts.memory_limit_bytes.unwrap_or(capacity).min(capacity);
    let trains = graph
        .nodes
        .iter()
        .any(|n| n.role == Role::OptimizerState || n.role == Role::Gradient);
    let holds_activations = kept_values(graph)
        .iter()
        .zip(&graph.nodes)
        .any(|(&k, n)| k && n.role == Role::Activation);
    let classes = layers::classes(graph);
    let mut best: Option<Candidate> = None;
    let mut searches: Vec<MeshSearch> = meshes
        .iter()
        .map(|mesh| MeshSearch::new(graph, cluster, mesh, &annotations, opts.solver, &classes))
        .collect::<Result<_>>()?;
    let first_mb = match opts.micro_batches {
        Some(m) => m.max(1),
        None => 1,
    };
    // Meshes in the order of their optimum without a memory limit (the model's seconds, no
    // whole-step estimate needed): the fastest plans are found first, and the bound they set
    // ends the slower meshes' searches early. Each mesh's model and optimum are its own: they
    // are built and solved in parallel (the phase timings add the threads' seconds).
    progress(PlanProgress {
        done: 0,
        total: meshes.len(),
        mesh: String::new(),
    });
    let frees: Vec<(Result<Option<f64>>, PlanTimings)> = searches
        .par_iter_mut()
        .map(|ctx| {
            let mut t = PlanTimings::default();
            (ctx.free_seconds(first_mb, &mut t), t)
        })
        .collect();
    let mut order: Vec<(f64, usize)> = Vec::with_capacity(searches.len());
    for (k, (seconds, t)) in frees.into_iter().enumerate() {
        timings.absorb(&t);
        order.push((seconds?.unwrap_or(f64::INFINITY), k));
    }
    order.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    for (done, &(_, k)) in order.iter().enumerate() {
        let ctx = &searches[k];
        let mesh = ctx.mesh;
        progress(PlanProgress {
            done,
            total: meshes.len(),
            mesh: mesh.to_string(),
        });
        timings.meshes += 1;
        // Under a binding limit ZeRO-2 and 3 are searched, not ZeRO-1 or none: the three below
        // 3 price every pick's time the same (in the model and in the whole-step estimate) and
        // ZeRO-2 keeps the least, so every plan that fits at the others fits at ZeRO-2, as fast.
        // ZeRO-3 first: its optimum without a limit usually fits, and what it finds bounds
        // ZeRO-2's search.
        let zeros: &[Zero] = if trains && ctx.data_axis.is_some() {
            &[Zero::Stage3, Zero::Stage2]
        } else {
            &[Zero::None]
        };
        let mbs: Vec<u64> = match opts.micro_batches {
            Some(m) => vec![m.max(1)],
            None if holds_activations => vec![1, 2, 4, 8, 16, 32, 64],
            None => vec![1],
        };
        // The optimum without a memory limit is the optimum if it fits: ZeRO and more
        // micro-batches only save memory, never time; and if it is no faster than the best
        // plan found, nothing on this mesh is.
        let Some(free) = ctx.solve(Zero::None, mbs[0], None, &mut timings)? else {
            continue;
        };
        if free.memory.total() <= limit {
            keep_best(&mut best, free);
            continue;
        }
        if best
            .as_ref()
            .is_some_and(|b| free.step_time_s >= b.step_time_s)
        {
            continue;
        }
        let mut free = Some(free);
        // The model's seconds of the fastest plan found on this mesh: a ZeRO stage whose
        // model optimum under the limit, at the most micro-batches (whose memory is the least,
        // so whose optimum bounds every count's), is no faster in the model is not searched.
        let mut mesh_best = f64::INFINITY;
        // By the same rule the optimum without a limit at a ZeRO stage and micro-batch count
        // bounds every plan with that stage and more micro-batches: once it is no faster than
        // the best plan found, the stage's search stops.
        let most = *mbs
            .last()
            .expect("invariant: at least one micro-batch count");
        for &zero in zeros {
            if mesh_best.is_finite()
                && ctx.probe(zero, most, limit, mesh_best, &mut timings)? >= mesh_best
            {
                continue;
            }
            for &m in &mbs {
                let first = free.take().filter(|_| zero == Zero::None && m == mbs[0]);
                let bound = best.as_ref().map_or(f64::INFINITY, |b| b.step_time_s);
                match ctx.fitting(zero, m, limit, bound, first, &mut timings)? {
                    Fit::Found(c) => {
                        mesh_best = mesh_best.min(c.model_seconds);
                        keep_best(&mut best, c);
                        break;
                    }
                    Fit::Bounded(fits) => {
                        if let Some(seconds) = fits {
                            mesh_best = mesh_best.min(seconds);
                        }
                        break;
                    }
                    Fit::None => {}
                    // More micro-batches help if the optimum without a limit may come to fit
                    // (the transient peak the model does not count shrinks with them), or if
                    // they let the model pick faster by what the estimate lacks. Neither when
                    // the model's bound at the most micro-batches is above that optimum (the
                    // limit binds on the model even there) and no faster than this pick less
                    // the estimate's excess.
                    Fit::Slower {
                        seconds,
                        excess,
                        free,
                    } => {
                        let needed = seconds - excess;
                        if m != most {
                            let bound = ctx.probe(zero, most, limit, needed, &mut timings)?;
                            if bound >= needed && bound > free * (1.0 + 1e-9) {
                                break;
                            }
                        }
                    }
                }
            }
        }
    }
    progress(PlanProgress {
        done: meshes.len(),
        total: meshes.len(),
        mesh: String::new(),
    });
    let Some(best) = best else {
        return Err(infeasible(
            graph,
            cluster,
            &meshes,
            &annotations,
            opts,
            limit,
            &mut timings,
        )?);
    };
    timings.total_s = start.elapsed().as_secs_f64();
    Ok((best.into_plan(graph, cluster)?, timings))
}

/// What [`MeshSearch::fitting`] found.
enum Fit {
    Found(Candidate),
    /// Nothing at this ZeRO stage and micro-batch count fits.
    None,
    /// Even the optimum without a limit is no faster than the best plan found; the model's
    /// seconds of that optimum if it fits.
    Bounded(Option<f64>),
    /// The fastest pick within the limit does not fit and is no faster than the best plan
    /// found: its model seconds, by how many seconds its estimate exceeds the best's, and the
    /// model's seconds of the optimum without a limit.
    Slower {
        seconds: f64,
        excess: f64,
        free: f64,
    },
}

/// One priced candidate.
struct Candidate {
    assignment: ShardingAssignment,
    zero: Zero,
    micro_batches: u64,
    step_time_s: f64,
    model_tflops: f64,
    hardware_tflops: f64,
    memory: PlanMemory,
    /// The kept values' bytes as the ILP's model counts them (its memory constraint's measure).
    model_memory: f64,
    /// The model's seconds of the pick (which the search compares within one mesh).
    model_seconds: f64,
    collectives: Vec<PlanCollective>,
    strategy: String,
}

fn keep_best(best: &mut Option<Candidate>, c: Candidate) {
    if best
        .as_ref()
        .map_or(true, |b| c.step_time_s < b.step_time_s)
    {
        *best = Some(c);
    }
}

impl Candidate {
    fn into_plan(self, graph: &Graph, cluster: &Cluster) -> Result<Plan> {
        Ok(Plan {
            format_version: PLAN_FORMAT_VERSION,
            graph: graph.name.clone(),
            graph_nodes: graph.len(),
            cluster: PlanCluster {
                device: cluster.device.name.clone(),
                nodes: cluster.nodes,
                devices_per_node: cluster.devices_per_node,
            },
            mesh: self.assignment.mesh.clone(),
            strategy: self.strategy,
            zero: self.zero,
            micro_batches: self.micro_batches,
            step_time_s: self.step_time_s,
            model_tflops_per_device: self.model_tflops,
            hardware_tflops_per_device: self.hardware_tflops,
            memory: self.memory,
            shardings: graph
                .ids()
                .map(|v| PlanValue {
                    value: graph.node(v).name.clone(),
                    sharding: self.assignment.shardings[v.index()].clone(),
                    parameter: graph.node(v).role == Role::Parameter,
                })
                .collect(),
            collectives: self.collectives,
            pipeline: None,
            allreduce: Default::default(),
        })
    }
}

/// The search on one mesh.
struct MeshSearch<'a> {
    graph: &'a Graph,
    cluster: &'a Cluster,
    mesh: &'a Mesh,
    fixed: BTreeMap<usize, Sharding>,
    solver: Solver,
    data_axis: Option<String>,
    classes: Classes,
    /// The model of this mesh, once built.
    built: std::cell::RefCell<Option<model::Model>>,
    /// The optimum without a memory limit, by whether ZeRO-3's gathers are priced: the only
    /// cost the step options change (ZeRO stages and micro-batches otherwise change memory,
    /// never time), so it is solved at most twice per mesh.
    free: std::cell::RefCell<BTreeMap<bool, Option<Vec<usize>>>>,
    /// [`MeshSearch::probe`]'s answers: ZeRO stage, bound, the cutoff it was solved to.
    probes: std::cell::RefCell<Vec<(Zero, f64, f64)>>,
}

impl<'a> MeshSearch<'a> {
    fn new(
        graph: &'a Graph,
        cluster: &'a Cluster,
        mesh: &'a Mesh,
        annotations: &[Annotation],
        solver: Solver,
        classes: &Classes,
    ) -> Result<Self> {
        Ok(MeshSearch {
            graph,
            cluster,
            mesh,
            fixed: fixed_choices(graph, mesh, annotations)?,
            solver,
            classes: classes.clone(),
            data_axis: mesh
                .axes
                .iter()
                .find(|a| a.name == "dp" && a.size > 1)
                .map(|a| a.name.clone()),
            built: Default::default(),
            free: Default::default(),
            probes: Default::default(),
        })
    }
}

impl MeshSearch<'_> {
    fn step(&self, zero: Zero, m: u64, limit: Option<f64>) -> StepOptions {
        StepOptions {
            zero,
            data_axis: self.data_axis.clone(),
            micro_batches: m,
            memory_limit: limit,
        }
    }

    /// The mesh's model set to `step`: built on first use (strategy enumeration and edge
    /// pricing), then only re-priced for the step's ZeRO stage, micro-batches and limit.
    fn model(
        &self,
        step: &StepOptions,
        t: &mut PlanTimings,
    ) -> Result<std::cell::RefMut<'_, model::Model>> {
        let clock = Instant::now();
        let mut slot = self.built.borrow_mut();
        if slot.is_none() {
            let pricing = Pricing::new(self.cluster, self.mesh)?;
            *slot = Some(model::build(
                self.graph,
                &pricing,
                &self.fixed,
                step,
                self.classes.clone(),
            )?);
        }
        let mut m = std::cell::RefMut::map(slot, |s| s.as_mut().expect("just built"));
        m.set_step(step, self.mesh);
        t.enumerate_s += clock.elapsed().as_secs_f64();
        Ok(m)
    }

    fn pick(&self, m: &model::Model, t: &mut PlanTimings) -> Result<Option<ilp::Picked>> {
        let clock = Instant::now();
        t.solves += 1;
        let (picked, size, gap) = super::elimination::run(self.solver, m)?;
        t.note_size(&size);
        t.gap = t.gap.max(gap);
        t.solve_s += clock.elapsed().as_secs_f64();
        Ok(picked)
    }

    /// The model's seconds of its optimum without a memory limit (ZeRO none: the ZeRO stages
    /// below 3 price the same), solved once and kept for [`MeshSearch::solve`].
    fn free_seconds(&self, m: u64, t: &mut PlanTimings) -> Result<Option<f64>> {
        let model = self.model(&self.step(Zero::None, m, None), t)?;
        Ok(self.picked(&model, Zero::None, t)?.map(|p| p.seconds))
    }

    /// The model's optimum (set to `zero` and a limit or none), the one without a limit
    /// solved at most once per ZeRO-3-or-not (`free`).
    fn picked(
        &self,
        model: &model::Model,
        zero: Zero,
        t: &mut PlanTimings,
    ) -> Result<Option<ilp::Picked>> {
        if model.memory_limit.is_some() {
            return self.pick(model, t);
        }
        let key = zero >= Zero::Stage3;
        let known = self.free.borrow().get(&key).cloned();
        let pick = match known {
            Some(pick) => pick,
            None => {
                let pick = self.pick(model, t)?.map(|p| p.pick);
                self.free.borrow_mut().insert(key, pick.clone());
                pick
            }
        };
        Ok(pick.map(|pick| {
            let (seconds, memory) = ilp::evaluate(model, &pick);
            ilp::Picked {
                pick,
                seconds,
                memory,
            }
        }))
    }

    /// A lower bound of the model's seconds of every pick at `zero` and `m` within `limit`
    /// (infinite when nothing fits), its solve stopped once the bound reaches `cutoff`: so
    /// whether the bound is at least `cutoff` is exact, its value above that is not. Kept per
    /// ZeRO stage (the search asks at the most micro-batches) and reused where it answers.
    fn probe(
        &self,
        zero: Zero,
        m: u64,
        limit: f64,
        cutoff: f64,
        t: &mut PlanTimings,
    ) -> Result<f64> {
        let known = self.probes.borrow().iter().find(|p| p.0 == zero).copied();
        if let Some((_, bound, asked)) = known {
            // Exact below the cutoff it was solved to; above it, a proof of "at least".
            if bound < asked || cutoff <= bound {
                return Ok(bound);
            }
        }
        let model = self.model(&self.step(zero, m, Some(limit)), t)?;
        let clock = Instant::now();
        t.solves += 1;
        let (bound, size) = super::elimination::lower_bound(self.solver, &model, cutoff)?;
        t.note_size(&size);
        t.solve_s += clock.elapsed().as_secs_f64();
        let mut probes = self.probes.borrow_mut();
        probes.retain(|p| p.0 != zero);
        probes.push((zero, bound, cutoff));
        Ok(bound)
    }

    /// The model's optimum under `limit`, priced by the cost model.
    fn solve(
        &self,
        zero: Zero,
        m: u64,
        limit: Option<f64>,
        t: &mut PlanTimings,
    ) -> Result<Option<Candidate>> {
        let model = self.model(&self.step(zero, m, limit), t)?;
        let picked = self.picked(&model, zero, t)?;
        let Some(p) = picked else {
            return Ok(None);
        };
        let assignment = model.assignment(&p.pick, self.mesh);
        let mut c = self.price(assignment, zero, m, t)?;
        c.model_memory = p.memory;
        c.model_seconds = p.seconds;
        Ok(Some(c))
    }

    /// The fastest plan at `zero` and `m` whose whole-step memory fits `limit`. The ILP's
    /// memory constraint counts the kept values only, and counts them unfused, so the cost
    /// model's whole-step estimate differs from it: the constraint's limit starts from `limit`
    /// shifted by that difference on the unconstrained optimum, then is tightened by any
    /// overshoot the estimate finds.
    ///
    /// `free` is the optimum without a limit at `zero` and `m` when already solved; `bound` the
    /// step time of the best plan found so far, which the optimum without a limit must beat.
    #[allow(clippy::too_many_arguments)]
    fn fitting(
        &self,
        zero: Zero,
        m: u64,
        limit: f64,
        bound: f64,
        free: Option<Candidate>,
        t: &mut PlanTimings,
    ) -> Result<Fit> {
        let free = match free {
            Some(c) => c,
            None => match self.solve(zero, m, None, t)? {
                Some(c) => c,
                None => return Ok(Fit::None),
            },
        };
        if free.step_time_s >= bound {
            let fits = free.memory.total() <= limit;
            return Ok(Fit::Bounded(fits.then_some(free.model_seconds)));
        }
        if free.memory.total() <= limit {
            return Ok(Fit::Found(free));
        }
        let mut kept_limit = limit + (free.model_memory - free.memory.total());
        for _ in 0..4 {
            // No pick keeps a negative number of bytes: nothing to solve.
            if kept_limit <= 0.0 {
                return Ok(Fit::None);
            }
            let Some(c) = self.solve(zero, m, Some(kept_limit), t)? else {
                return Ok(Fit::None);
            };
            let total = c.memory.total();
            if total <= limit {
                return Ok(Fit::Found(c));
            }
            // A tighter limit only gives slower picks; more micro-batches may still do better.
            if c.step_time_s >= bound {
                return Ok(Fit::Slower {
                    seconds: c.model_seconds,
                    excess: c.step_time_s - bound,
                    free: free.model_seconds,
                });
            }
            // Below what this pick keeps: a limit between it and the last would return it again.
            kept_limit = kept_limit.min(c.model_memory) - ((total - limit) * 1.01 + 1.0);
        }
        Ok(Fit::None)
    }

    /// The cost model's whole step for an assignment.
    fn price(
        &self,
        assignment: ShardingAssignment,
        zero: Zero,
        m: u64,
        t: &mut PlanTimings,
    ) -> Result<Candidate> {
        let clock = Instant::now();
        let g = self.graph;
        let like = self.classes.representatives();
        let comms = required_collectives_unpaired(g, &assignment, &like)?;
        let opts = GraphOptions {
            micro_batches: m,
            data_axis: self.data_axis.clone(),
            zero,
            ..GraphOptions::default()
        };
        let e = step_estimate(g, &assignment, &comms, self.cluster, &opts)?;
        let pricing = Pricing::new(self.cluster, self.mesh)?;
        let step = self.step(zero, m, None);
        let gathers = model::zero3_gather_seconds(g, &assignment, &pricing, &step)?
            + model::carry_seconds(g, &assignment, &pricing)?;
        let mut collectives = Vec::with_capacity(comms.len());
        for c in &comms {
            let place = pricing.placement(&c.op.collective_axes())?;
            let local = c.local_operand.size_bytes() as f64;
            let bytes = match c.op {
                shardc_ir::Op::AllGather { .. } => local * place.ranks as f64,
                _ => local,
            };
            collectives.push(PlanCollective {
                op: g.node(c.node).name.clone(),
                kind: c.op.name().to_string(),
                axes: c.op.collective_axes(),
                bytes,
                seconds: pricing.collective_seconds(&c.op, &c.local_operand)?,
                reason: c.reason.clone(),
            });
        }
        for &(state, new) in &g.training.updates {
            let (from, to) = (
                &assignment.shardings[new.index()],
                &assignment.shardings[state.index()],
            );
            if crate::reshard::same_layout(from, to) {
                continue;
            }
            for step in crate::reshard::reshard_unpaired(from, to, g.ty(new), self.mesh)? {
                let Some(op) = step.collective() else {
                    continue;
                };
                let place = pricing.placement(&op.collective_axes())?;
                let local = step.local_operand.size_bytes() as f64;
                collectives.push(PlanCollective {
                    op: g.node(new).name.clone(),
                    kind: op.name().to_string(),
                    axes: op.collective_axes(),
                    bytes: match op {
                        shardc_ir::Op::AllGather { .. } => local * place.ranks as f64,
                        _ => local,
                    },
                    seconds: pricing.collective_seconds(&op, &step.local_operand)?,
                    reason: format!(
                        "loop-carried: the next step reads `{}` as {}",
                        g.node(state).name,
                        crate::format::jax(to)
                    ),
                });
            }
        }
        let step_time = e.step_time_s + gathers;
        let scale = if step_time > 0.0 {
            e.step_time_s / step_time
        } else {
            1.0
        };
        let mem = &e.memory;
        let strategy = words::describe(g, &assignment, self.cluster, zero, m);
        t.estimate_s += clock.elapsed().as_secs_f64();
        Ok(Candidate {
            assignment,
            zero,
            micro_batches: m,
            step_time_s: step_time,
            model_tflops: e.model_tflops_per_device * scale,
            hardware_tflops: e.hardware_tflops_per_device * scale,
            memory: PlanMemory::from(mem),
            model_memory: 0.0,
            model_seconds: 0.0,
            collectives,
            strategy,
        })
    }

    /// The plan of least memory at ZeRO-3 (where it applies) and the most micro-batches.
    fn least_memory(&self, m: u64, t: &mut PlanTimings) -> Result<Option<Candidate>> {
        let zero = if self.data_axis.is_some() {
            Zero::Stage3
        } else {
            Zero::None
        };
        let mut model = self.model(&self.step(zero, m, None), t)?;
        for cs in &mut model.choices {
            for c in cs.iter_mut() {
                c.cost = c.memory;
            }
        }
        for e in &mut model.edges {
            for row in &mut e.cost {
                for c in row.iter_mut() {
                    if c.is_finite() {
                        *c = 0.0;
                    }
                }
            }
        }
        let Some(p) = self.pick(&model, t)? else {
            return Ok(None);
        };
        let assignment = model.assignment(&p.pick, self.mesh);
        self.price(assignment, zero, m, t).map(Some)
    }
}

/// The error of a memory limit no plan fits: the least memory any plan found needs, and what
/// dominates it.
fn infeasible(
    graph: &Graph,
    cluster: &Cluster,
    meshes: &[Mesh],
    annotations: &[Annotation],
    opts: &PlanOptions,
    limit: f64,
    t: &mut PlanTimings,
) -> Result<ShardingError> {
    let m = opts.micro_batches.unwrap_or(64).max(1);
    let classes = layers::classes(graph);
    let mut least: Option<Candidate> = None;
    for mesh in meshes {
        let ctx = MeshSearch::new(graph, cluster, mesh, annotations, opts.solver, &classes)?;
        if let Some(c) = ctx.least_memory(m, t)? {
            if least
                .as_ref()
                .map_or(true, |l| c.memory.total() < l.memory.total())
            {
                least = Some(c);
            }
        }
    }
    let message = match least {
        Some(l) => {
            let (what, bytes) = l.memory.dominant();
            format!(
                "no plan fits in {:.2} GB per device: the smallest any plan needs is {:.2} GB \
                 (mesh {}, ZeRO {}, {} micro-batch{}), dominated by {what} ({:.2} GB)",
                limit / 1e9,
                l.memory.total() / 1e9,
                l.assignment.mesh,
                super::plan::zero_name(l.zero),
                l.micro_batches,
                if l.micro_batches == 1 { "" } else { "es" },
                bytes / 1e9
            )
        }
        None => format!("no plan fits in {:.2} GB per device", limit / 1e9),
    };
    Ok(ShardingError::Invalid {
        value: graph.name.clone(),
        message,
    })
}
