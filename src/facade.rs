//! The pipeline, once: import → verify → propagate or plan → partition → simplify → run.
//! The CLI's subcommands call these and only parse arguments and print.

use std::path::Path;

use shardc_codegen::{gather_outputs, local_type, partition, shard_inputs, simplify, SpmdProgram};
use shardc_cost_model::Cluster;
use shardc_ir::{AllowedDirection, Annotation, Graph, Mesh, ShardingAssignment};
use shardc_runtime::{run_spmd_with, AllReduceAlgorithm, Tensor};
use shardc_sharding::auto::{Plan, PlanOptions, PlanProgress, PlanTimings};
use shardc_sharding::{propagate_with, PropagateOptions, ShardedGraph};

use crate::error::{Error, Result, Step};

/// The partitioned program a plan compiles to: one SPMD program, the same on every device.
pub type Program = SpmdProgram;

/// The formats a graph file can be in.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum InputFormat {
    /// shardc's graph JSON (`docs/graph-format.md`).
    Json,
    /// XLA HLO text, with its shardings.
    Hlo,
    /// An ONNX `ModelProto` (PyTorch's exporters), initializers as parameters.
    Onnx,
    /// StableHLO text (`jax.jit(f).lower(...).as_text()`), with Shardy or GSPMD shardings.
    StableHlo,
}

/// Which format a file is in: by extension, else by its first non-blank character (`{` is
/// JSON, `HloModule` is HLO, `module`/`func.func` StableHLO). New formats add one arm here.
pub fn input_format(path: &Path, text: &str) -> InputFormat {
    match path.extension().and_then(|e| e.to_str()) {
        Some("json") => InputFormat::Json,
        Some("hlo") | Some("txt") => InputFormat::Hlo,
        Some("onnx") => InputFormat::Onnx,
        Some("mlir") | Some("stablehlo") | Some("sdy") => InputFormat::StableHlo,
        _ if text.trim_start().starts_with("HloModule") => InputFormat::Hlo,
        _ if shardc_ir::stablehlo::looks_like(text) => InputFormat::StableHlo,
        _ => InputFormat::Json,
    }
}

/// A graph as read, with what its format says beyond the graph (HLO's shard groups and
/// propagation barriers).
#[derive(Clone, Debug, PartialEq)]
pub struct Imported {
    /// The graph, verified; its mesh and annotations as the file gives them.
    pub graph: Graph,
    /// Values that take one sharding (HLO `shard_as`/`shard_like`).
    pub shard_groups: Vec<Vec<String>>,
    /// Propagation barriers.
    pub barriers: Vec<(String, AllowedDirection)>,
}

impl Imported {
    /// A graph with no shard groups or barriers (JSON and ONNX carry none).
    pub fn of(graph: Graph) -> Self {
        Imported {
            graph,
            shard_groups: Vec::new(),
            barriers: Vec::new(),
        }
    }
}

/// Reads and verifies a graph file in any format [`input_format`] knows.
pub fn import(path: &Path) -> Result<Imported> {
    import_with(path, &shardc_ir::onnx::OnnxOptions::default())
}

/// [`import`] with the sizes of an ONNX model's dynamic dims (`--dim batch=2`); other formats
/// have none.
pub fn import_with(path: &Path, onnx: &shardc_ir::onnx::OnnxOptions) -> Result<Imported> {
    let what = path.display().to_string();
    if input_format(path, "") == InputFormat::Onnx {
        let model =
            shardc_ir::onnx::import(path, onnx).map_err(|e| Error::new(Step::Import, &what, e))?;
        return Ok(Imported::of(model.graph));
    }
    let text = std::fs::read_to_string(path).map_err(|e| Error::new(Step::Import, &what, e))?;
    import_text(&what, &text, input_format(path, &text))
}

/// [`import`] of text already read; `what` names it in errors.
pub fn import_text(what: &str, text: &str, format: InputFormat) -> Result<Imported> {
    match format {
        InputFormat::Json => {
            let graph =
                shardc_ir::from_json(text).map_err(|e| Error::new(Step::Import, what, e))?;
            Ok(Imported::of(graph))
        }
        InputFormat::Onnx => Err(Error::new(
            Step::Import,
            what,
            "an ONNX model is binary: read it with `import` (a path), not as text",
        )),
        InputFormat::Hlo | InputFormat::StableHlo => {
            let imp = if format == InputFormat::Hlo {
                shardc_ir::hlo::import(text)
            } else {
                shardc_ir::stablehlo::import(text)
            }
            .map_err(|e| Error::new(Step::Import, what, e))?;
            shardc_ir::verify(&imp.graph).map_err(|e| Error::new(Step::Verify, what, e))?;
            Ok(Imported {
                graph: imp.graph,
                shard_groups: imp.shard_groups,
                barriers: imp.barriers,
            })
        }
    }
}

/// The annotations in effect on `mesh`: the graph's own that fit it (the others are returned as
/// warnings), then `extra`, which replaces the graph's annotation of the same value.
pub fn merge_annotations(
    g: &Graph,
    mesh: &Mesh,
    extra: &[Annotation],
) -> (Vec<Annotation>, Vec<String>) {
    let mut out: Vec<Annotation> = Vec::new();
    let mut warnings = Vec::new();
    for ann in &g.annotations {
        let rank = g.find(&ann.value).map(|v| g.ty(v).rank());
        match rank.map(|r| ann.sharding.validate(mesh, r)) {
            Some(Ok(())) => out.push(ann.clone()),
            _ => warnings.push(format!(
                "annotation on `{}` does not fit mesh `{mesh}`; ignored",
                ann.value
            )),
        }
    }
    for a in extra {
        out.retain(|x| x.value != a.value);
        out.push(a.clone());
    }
    (out, warnings)
}

/// Propagates `annotations` through the imported graph on `mesh`, with its shard groups and
/// barriers.
pub fn propagate(imp: &Imported, mesh: &Mesh, annotations: &[Annotation]) -> Result<ShardedGraph> {
    let options = PropagateOptions {
        groups: imp.shard_groups.clone(),
        barriers: imp.barriers.clone(),
        ..Default::default()
    };
    propagate_with(&imp.graph, mesh, annotations, &options)
        .map_err(|e| Error::new(Step::Propagate, format!("graph `{}`", imp.graph.name), e))
}

/// Plans `g` on `cluster`: the mesh shape, every value's sharding, the ZeRO stage and the
/// micro-batch count with the fastest predicted step that fits, and (where the cluster has
/// reducer nodes) the gradient all-reduce algorithm ([`crate::allreduce_choice`]).
pub fn plan(g: &Graph, cluster: &Cluster, opts: &PlanOptions) -> Result<Plan> {
    plan_with(g, cluster, opts, &mut |_| {}).map(|(p, _)| p)
}

/// [`plan`], reporting progress per mesh shape and returning the time per phase.
pub fn plan_with(
    g: &Graph,
    cluster: &Cluster,
    opts: &PlanOptions,
    progress: &mut dyn FnMut(PlanProgress),
) -> Result<(Plan, PlanTimings)> {
    shardc_ir::verify(g).map_err(|e| Error::new(Step::Verify, format!("graph `{}`", g.name), e))?;
    let first = shardc_sharding::auto::plan_with(g, cluster, opts, progress)
        .map_err(|e| Error::new(Step::Plan, format!("graph `{}`", g.name), e))?;
    // With reducer nodes (`--cluster PRESET+R`), the Reduction Server weighed against
    // reduce-scattered gradients, and the gradient all-reduce the step is faster on.
    crate::reduction::plan_with_reducers(g, cluster, opts, progress, first)
}

/// Plans a pipelined training step: (data, tensor, pipeline) degrees, micro-batches and
/// schedule chosen together (`shardc_pipeline::plan_pipeline`); what `opts` fixes is kept.
pub fn plan_pipeline(
    g: &Graph,
    cluster: &Cluster,
    opts: &shardc_pipeline::PipelineOptions,
) -> Result<shardc_pipeline::PipelinePlan> {
    shardc_ir::verify(g).map_err(|e| Error::new(Step::Verify, format!("graph `{}`", g.name), e))?;
    shardc_pipeline::plan_pipeline(g, cluster, opts)
        .map_err(|e| Error::new(Step::Plan, format!("graph `{}`", g.name), e))
}

/// Partitions `g` under `plan` (checked to be a plan of this graph) and simplifies the
/// collectives.
pub fn compile(g: &Graph, plan: &Plan) -> Result<Program> {
    let what = format!("graph `{}`", g.name);
    let assignment = plan
        .assignment(g)
        .map_err(|e| Error::new(Step::Plan, &what, e))?;
    partition_assignment(g, &assignment, true)
}

/// Propagates the annotations, partitions and (if asked) simplifies: the program of an
/// annotated graph.
pub fn compile_annotated(
    imp: &Imported,
    mesh: &Mesh,
    annotations: &[Annotation],
    simplify_collectives: bool,
) -> Result<Program> {
    let sharded = propagate(imp, mesh, annotations)?;
    partition_assignment(&imp.graph, &sharded.assignment, simplify_collectives)
}

fn partition_assignment(
    g: &Graph,
    assignment: &ShardingAssignment,
    simplify_collectives: bool,
) -> Result<Program> {
    let what = format!("graph `{}`", g.name);
    let p = partition(g, assignment).map_err(|e| Error::new(Step::Partition, &what, e))?;
    if !simplify_collectives {
        return Ok(p);
    }
    simplify(&p, shardc_codegen::DEFAULT_BUCKET_BYTES)
        .map_err(|e| Error::new(Step::Simplify, &what, e))
}

/// Where a program's devices run.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub enum Backend {
    /// One CPU thread per device, collectives through shared memory (the default).
    #[default]
    Threads,
    /// Every rank on a GPU (rank r on GPU r mod the GPU count); needs the `cuda` feature.
    Cuda,
    /// One MPI process per device, under `mpirun`; needs the `mpi` feature.
    Mpi,
}

impl Backend {
    /// The name the CLI and reports use.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Threads => "threads",
            Backend::Cuda => "cuda",
            Backend::Mpi => "mpi",
        }
    }
}

/// How [`run_with`] runs a program.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct RunOptions {
    /// Where the devices run.
    pub backend: Backend,
    /// The all-reduce algorithm: ring, or a Reduction Server with reducers that hold no device.
    pub allreduce: AllReduceAlgorithm,
}

/// Runs a program on the threads backend (one thread per device): the global `inputs` are
/// sharded, run, and the outputs gathered back to global tensors.
pub fn run(program: &Program, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
    let outs = run_with(program, inputs, &RunOptions::default())?;
    // Only MPI ranks other than 0 come back empty-handed, and this is the threads backend.
    Ok(outs.unwrap_or_default())
}

/// [`run`] on a chosen backend and all-reduce algorithm. Under MPI every process calls this for
/// its own rank; rank 0 gets the gathered outputs and the others `None`.
pub fn run_with(
    program: &Program,
    inputs: &[Tensor],
    opts: &RunOptions,
) -> Result<Option<Vec<Tensor>>> {
    let what = format!("program `{}`", program.graph.name);
    let fail = |e: Box<dyn std::error::Error + Send + Sync>| Error::new(Step::Run, &what, e);
    let mesh = program
        .graph
        .mesh
        .clone()
        .ok_or_else(|| fail("the partitioned program names no mesh".into()))?;
    let globals: Vec<Vec<f64>> = inputs.iter().map(Tensor::to_f64_vec).collect();
    let per_device = shard_inputs(program, &globals).map_err(|e| fail(e.into()))?;
    let mut feeds = Vec::with_capacity(per_device.len());
    for dev in per_device {
        let mut feed = Vec::with_capacity(dev.len());
        for (data, i) in dev.iter().zip(&program.inputs) {
            let ty = local_type(&i.global, &i.sharding, &mesh);
            feed.push(Tensor::from_f64(ty, data).map_err(|e| fail(e.into()))?);
        }
        feeds.push(feed);
    }
    let outs = match opts.backend {
        Backend::Threads => run_spmd_with(&program.graph, &mesh, feeds, opts.allreduce)
            .map_err(|e| fail(e.into()))?,
        Backend::Cuda => run_spmd_cuda(&program.graph, &mesh, feeds).map_err(|e| fail(e.into()))?,
        Backend::Mpi => match run_mpi(&program.graph, &mesh, feeds, opts.allreduce)
            .map_err(|e| fail(e.into()))?
        {
            Some(outs) => outs,
            None => return Ok(None),
        },
    };
    let outs: Vec<Vec<Vec<f64>>> = outs
        .iter()
        .map(|dev| dev.iter().map(Tensor::to_f64_vec).collect())
        .collect();
    gather_outputs(program, &outs)
        .map_err(|e| fail(e.into()))?
        .into_iter()
        .zip(&program.outputs)
        .map(|(data, o)| Tensor::from_f64(o.global.clone(), &data).map_err(|e| fail(e.into())))
        .collect::<Result<Vec<_>>>()
        .map(Some)
}

/// This process's device (its MPI rank) runs the program; rank 0 gets every device's outputs.
#[cfg(feature = "mpi")]
fn run_mpi(
    g: &Graph,
    mesh: &Mesh,
    feeds: Vec<Vec<Tensor>>,
    allreduce: AllReduceAlgorithm,
) -> std::result::Result<Option<Vec<Vec<Tensor>>>, String> {
    let world = shardc_runtime::MpiWorld::init().map_err(|e| e.to_string())?;
    // Reducer ranks (past the devices) take no inputs.
    let mine = feeds.into_iter().nth(world.rank()).unwrap_or_default();
    Ok(shardc_runtime::run_spmd_mpi(
        &world, g, mesh, mine, allreduce,
    ))
}

#[cfg(not(feature = "mpi"))]
fn run_mpi(
    _: &Graph,
    _: &Mesh,
    _: Vec<Vec<Tensor>>,
    _: AllReduceAlgorithm,
) -> std::result::Result<Option<Vec<Vec<Tensor>>>, String> {
    Err(
        "`--backend mpi` needs shardc built with the `mpi` feature (cargo build --features mpi)"
            .into(),
    )
}

/// The CUDA backend's run, with what ran on the host said on standard error.
#[cfg(feature = "cuda")]
fn run_spmd_cuda(
    g: &Graph,
    mesh: &Mesh,
    feeds: Vec<Vec<Tensor>>,
) -> std::result::Result<Vec<Vec<Tensor>>, shardc_runtime::RuntimeError> {
    use shardc_runtime::cuda;
    let (outs, report) = cuda::run_spmd_cuda(g, mesh, feeds, &cuda::CudaOptions::default())?;
    eprintln!(
        "cuda backend on {}; ops run on the host (no GPU kernel): {:?}",
        report.device, report.host_fallbacks
    );
    Ok(outs)
}

#[cfg(not(feature = "cuda"))]
fn run_spmd_cuda(
    _: &Graph,
    _: &Mesh,
    _: Vec<Vec<Tensor>>,
) -> std::result::Result<Vec<Vec<Tensor>>, shardc_runtime::RuntimeError> {
    Err(shardc_runtime::RuntimeError::Invalid(
        "--backend cuda: this shardc was built without the `cuda` feature (cargo build --features cuda)"
            .into(),
    ))
}

/// Runs `g` under `plan` on the global `inputs`: a plan within one stage is compiled
/// ([`compile`]) and run ([`run_with`]); a pipelined plan (with a `pipeline` part) runs its
/// stages, schedule and micro-batches ([`crate::compile_pipelined`], [`crate::run_pipelined`]).
/// Either way the outputs are the step's, in `g.outputs` order. `opts.allreduce` left at the
/// ring (the default) takes the plan's algorithm (`Plan::allreduce`: the Reduction Server with
/// the plan's reducers, as threads or as extra MPI processes). Under MPI every process calls
/// this; rank 0 gets the outputs and the others `None`.
pub fn run_plan(
    g: &Graph,
    plan: &Plan,
    inputs: &[Tensor],
    opts: &RunOptions,
) -> Result<Option<Vec<Tensor>>> {
    let mut opts = *opts;
    if opts.allreduce == AllReduceAlgorithm::Ring {
        opts.allreduce = plan_allreduce(plan);
    }
    let opts = &opts;
    if crate::pipelined::is_pipelined(plan) {
        let p = crate::pipelined::compile_pipelined(g, plan)?;
        return crate::pipelined::run_pipelined(&p, g, inputs, opts);
    }
    run_with(&compile(g, plan)?, inputs, opts)
}

/// The runtime algorithm of the plan's gradient all-reduce.
pub fn plan_allreduce(plan: &Plan) -> AllReduceAlgorithm {
    match plan.allreduce {
        shardc_sharding::auto::PlanAllReduce::Ring => AllReduceAlgorithm::Ring,
        shardc_sharding::auto::PlanAllReduce::ReductionServer { reducers, .. } => {
            AllReduceAlgorithm::ReductionServer {
                reducers: reducers as usize,
            }
        }
    }
}
