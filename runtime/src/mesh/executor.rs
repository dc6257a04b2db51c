//! Running partitioned programs on a mesh of thread devices: SPMD (one program on every device)
//! and MPMD (one program per pipeline stage, stages linked by send/recv).

use std::sync::Mutex;
use std::time::Duration;

use shardc_ir::{DType, Graph, Mesh, Node, Op, TensorType, ValueId};

use super::communicator::Communicator;
use super::threads::{launch_with, ThreadComm};
use super::AllReduceAlgorithm;
use crate::error::RuntimeError;
use crate::executor::{owned, run_graph, DeviceOps};
use crate::tensor::Tensor;

/// A failure to inject, for testing that a failing device stops the whole mesh.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InjectedFailure {
    /// Global device id.
    pub device: usize,
    /// The node (by name) at which the device fails, before computing it.
    pub node: String,
    /// Panic instead of returning an error.
    pub panic: bool,
}

/// Options of a mesh run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MeshOptions {
    /// The longest a device waits for its peers in one collective or receive.
    pub timeout: Duration,
    /// A failure to inject (tests only; `None` in real runs).
    pub fail: Option<InjectedFailure>,
}

impl Default for MeshOptions {
    fn default() -> Self {
        MeshOptions {
            // Long enough for a peer's slowest kernel between two collectives in the test
            // models; a hang still ends.
            timeout: Duration::from_secs(300),
            fail: None,
        }
    }
}

/// One pipeline stage: the program its devices run, its (sub)mesh and the global device ids of
/// the mesh's positions.
#[derive(Clone, Debug)]
pub struct Stage<'a> {
    /// The SPMD program every device of the stage runs.
    pub program: &'a Graph,
    /// The stage's mesh (its axes must be those the program's collectives name).
    pub mesh: Mesh,
    /// The global device id of each mesh position.
    pub devices: Vec<usize>,
}

/// A backend's endpoint as the node loop needs it: the collectives, plus the device's global id
/// and a check that no peer has failed (free where the backend ends the whole job itself).
pub(crate) trait Endpoint: Communicator {
    /// This device's global id.
    fn device(&self) -> usize;
    /// Errors if another device has failed.
    fn check(&self) -> Result<(), RuntimeError>;
}

impl Endpoint for ThreadComm<'_> {
    fn device(&self) -> usize {
        ThreadComm::device(self)
    }
    fn check(&self) -> Result<(), RuntimeError> {
        ThreadComm::check(self)
    }
}

/// A device of a mesh run, as the node loop sees it.
pub(crate) struct MeshDevice<'a, 'c, C: Endpoint> {
    pub comm: &'c mut C,
    pub stages: &'a [Stage<'a>],
    pub fail: Option<&'a InjectedFailure>,
}

impl<C: Endpoint> MeshDevice<'_, '_, C> {
    /// The global device at this device's position in stage `stage`.
    fn peer(&self, stage: u32, node: &Node) -> Result<usize, RuntimeError> {
        let pos = self.comm.position();
        self.stages
            .get(stage as usize)
            .and_then(|s| s.devices.get(pos).copied())
            .ok_or_else(|| {
                RuntimeError::node(
                    &node.name,
                    node.op.name(),
                    format!("stage {stage} does not exist or has no device at position {pos}"),
                )
            })
    }
}

impl<C: Endpoint> DeviceOps for MeshDevice<'_, '_, C> {
    fn mesh_op(&mut self, node: &Node, operands: Vec<Tensor>) -> Result<Tensor, RuntimeError> {
        let mut operands = operands.into_iter();
        let mut x = || {
            operands
                .next()
                .ok_or_else(|| RuntimeError::node(&node.name, node.op.name(), "missing operand"))
        };
        let c = &mut *self.comm;
        match &node.op {
            Op::AxisIndex { axes } => {
                let mesh = c.mesh();
                if let Some(a) = axes.iter().find(|a| mesh.axis_index(a).is_none()) {
                    return Err(RuntimeError::node(
                        &node.name,
                        "axis_index",
                        format!("mesh `{mesh}` has no axis `{a}`"),
                    ));
                }
                let i = mesh.linear_index(c.position(), axes);
                Tensor::from_f64(TensorType::scalar(DType::I32), &[i as f64])
            }
            Op::AllReduce { axes, func } => c.all_reduce(x()?, axes, *func),
            Op::AllGather { dim, axes } => c.all_gather(x()?, *dim, axes),
            Op::ReduceScatter { dim, axes, func } => c.reduce_scatter(x()?, *dim, axes, *func),
            Op::AllToAll {
                split_dim,
                concat_dim,
                axes,
            } => c.all_to_all(x()?, *split_dim, *concat_dim, axes),
            Op::CollectivePermute { axes, pairs } => c.collective_permute(x()?, axes, pairs),
            Op::Send { to_stage, tag } => {
                let to = self.peer(*to_stage, node)?;
                let x = x()?;
                // The send node's value is its operand, so the mailbox gets a copy.
                self.comm.send(x.clone(), to, tag)?;
                Ok(x)
            }
            Op::Recv { from_stage, tag } => {
                let from = self.peer(*from_stage, node)?;
                self.comm.recv(from, tag, &node.ty)
            }
            _ => Err(RuntimeError::node(
                &node.name,
                node.op.name(),
                "not a mesh op (invariant)",
            )),
        }
    }

    fn before_node(&mut self, _v: ValueId, node: &Node) -> Result<(), RuntimeError> {
        self.comm.check()?;
        if let Some(f) = self.fail {
            if f.device == self.comm.device() && f.node == node.name {
                if f.panic {
                    panic!("injected panic at node `{}`", node.name);
                }
                return Err(RuntimeError::Device {
                    device: f.device,
                    message: format!("injected failure at node `{}`", node.name),
                });
            }
        }
        Ok(())
    }

    fn runs_all_effects(&self) -> bool {
        true
    }
}

/// Runs each stage's program on its devices; `inputs[d]` are global device `d`'s inputs (in
/// the order of its program's `inputs()`). Returns each device's outputs or its error.
pub fn run_mpmd(
    stages: &[Stage],
    inputs: Vec<Vec<Tensor>>,
    options: &MeshOptions,
) -> Result<Vec<Result<Vec<Tensor>, RuntimeError>>, RuntimeError> {
    run_mpmd_with(stages, inputs, options, AllReduceAlgorithm::Ring)
}

/// [`run_mpmd`] with a choice of all-reduce algorithm (the Reduction Server's reducers are
/// threads beside the devices').
pub fn run_mpmd_with(
    stages: &[Stage],
    inputs: Vec<Vec<Tensor>>,
    options: &MeshOptions,
    algorithm: AllReduceAlgorithm,
) -> Result<Vec<Result<Vec<Tensor>, RuntimeError>>, RuntimeError> {
    let layout: Vec<(Mesh, Vec<usize>)> = stages
        .iter()
        .map(|s| (s.mesh.clone(), s.devices.clone()))
        .collect();
    let total: usize = layout.iter().map(|(_, d)| d.len()).sum();
    if inputs.len() != total {
        return Err(RuntimeError::Invalid(format!(
            "{total} devices need {total} input lists, got {}",
            inputs.len()
        )));
    }
    let mut stage_of = vec![0; total];
    for (k, s) in stages.iter().enumerate() {
        shardc_ir::verify(s.program)?;
        if let Some(m) = &s.program.mesh {
            if m.axes != s.mesh.axes {
                return Err(RuntimeError::Invalid(format!(
                    "stage {k}: program `{}` is written for mesh `{m}`, it was given `{}`",
                    s.program.name, s.mesh
                )));
            }
        }
        for &d in &s.devices {
            if let Some(slot) = stage_of.get_mut(d) {
                *slot = k;
            }
        }
    }
    let inputs: Vec<Mutex<Option<Vec<Tensor>>>> =
        inputs.into_iter().map(|i| Mutex::new(Some(i))).collect();
    launch_with(&layout, options.timeout, algorithm, |comm| {
        let d = comm.device();
        let mine = inputs[d]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .ok_or_else(|| RuntimeError::Device {
                device: d,
                message: "inputs already taken (invariant)".into(),
            })?;
        let program = stages[stage_of[d]].program;
        let mut dev = MeshDevice {
            comm,
            stages,
            fail: options.fail.as_ref(),
        };
        run_graph(program, owned(mine), &program.outputs, &mut dev).map_err(|e| match e {
            RuntimeError::Aborted { .. }
            | RuntimeError::Timeout { .. }
            | RuntimeError::Device { .. } => e,
            other => RuntimeError::Device {
                device: d,
                message: other.to_string(),
            },
        })
    })
}

/// Runs `program` on every device of `mesh` (SPMD) and returns each device's outputs or error.
pub fn run_spmd_per_device(
    program: &Graph,
    mesh: &Mesh,
    inputs: Vec<Vec<Tensor>>,
    options: &MeshOptions,
) -> Result<Vec<Result<Vec<Tensor>, RuntimeError>>, RuntimeError> {
    let stage = Stage {
        program,
        mesh: mesh.clone(),
        devices: (0..mesh.devices.len()).collect(),
    };
    run_mpmd(&[stage], inputs, options)
}

/// Runs `program` on every device of `mesh`: `inputs[d]` and the result's `[d]` belong to
/// mesh position `d`. On failure, returns the error of the device that failed first in device
/// order (not the other devices' aborts).
pub fn run_spmd(
    program: &Graph,
    mesh: &Mesh,
    inputs: Vec<Vec<Tensor>>,
) -> Result<Vec<Vec<Tensor>>, RuntimeError> {
    run_spmd_with(program, mesh, inputs, AllReduceAlgorithm::Ring)
}

/// [`run_spmd`] with a choice of all-reduce algorithm.
pub fn run_spmd_with(
    program: &Graph,
    mesh: &Mesh,
    inputs: Vec<Vec<Tensor>>,
    algorithm: AllReduceAlgorithm,
) -> Result<Vec<Vec<Tensor>>, RuntimeError> {
    let stage = Stage {
        program,
        mesh: mesh.clone(),
        devices: (0..mesh.devices.len()).collect(),
    };
    let results = run_mpmd_with(&[stage], inputs, &MeshOptions::default(), algorithm)?;
    if results.iter().all(Result::is_ok) {
        return Ok(results.into_iter().flatten().collect());
    }
    let errors: Vec<RuntimeError> = results.into_iter().filter_map(Result::err).collect();
    let root = errors
        .iter()
        .position(|e| !matches!(e, RuntimeError::Aborted { .. }))
        .unwrap_or(0);
    Err(errors
        .into_iter()
        .nth(root)
        .unwrap_or_else(|| RuntimeError::Invalid("no device ran (invariant)".into())))
}
