//! Collectives of a GPU program through any host [`Communicator`]: the operand is copied to
//! the host, exchanged by the communicator (the threads backend's rendezvous, or MPI), and the
//! result copied back. This is how several ranks share one GPU in one process (NCCL refuses two
//! ranks of one communicator on the same GPU), and the fallback wherever NCCL is absent.

use shardc_ir::{DType, Node, Op, TensorType};

use super::device::{DeviceTensor, Gpu};
use super::exec::GpuMesh;
use crate::error::RuntimeError;
use crate::mesh::Communicator;
use crate::tensor::Tensor;

/// A GPU rank whose collectives go through a host communicator.
pub(crate) struct HostStaged<'c> {
    pub comm: &'c mut dyn Communicator,
    /// The global device ids of each pipeline stage's mesh positions (one stage for SPMD).
    pub stages: &'c [Vec<usize>],
}

/// The global device at `position` of stage `stage`.
pub(crate) fn peer(
    stages: &[Vec<usize>],
    stage: u32,
    position: usize,
    node: &Node,
) -> Result<usize, RuntimeError> {
    stages
        .get(stage as usize)
        .and_then(|s| s.get(position).copied())
        .ok_or_else(|| {
            RuntimeError::node(
                &node.name,
                node.op.name(),
                format!("stage {stage} does not exist or has no device at position {position}"),
            )
        })
}

/// `axis_index`: this position's linear coordinate over `axes`, as an i32 scalar.
pub(crate) fn axis_index(
    mesh: &shardc_ir::Mesh,
    position: usize,
    axes: &[String],
    node: &Node,
) -> Result<Tensor, RuntimeError> {
    if let Some(a) = axes.iter().find(|a| mesh.axis_index(a).is_none()) {
        return Err(RuntimeError::node(
            &node.name,
            "axis_index",
            format!("mesh `{mesh}` has no axis `{a}`"),
        ));
    }
    let i = mesh.linear_index(position, axes);
    Tensor::from_f64(TensorType::scalar(DType::I32), &[i as f64])
}

impl GpuMesh for HostStaged<'_> {
    fn mesh_op(
        &mut self,
        gpu: &mut Gpu,
        node: &Node,
        operands: Vec<DeviceTensor>,
    ) -> Result<DeviceTensor, RuntimeError> {
        let mut host = Vec::with_capacity(operands.len());
        for d in &operands {
            host.push(gpu.download(d)?);
        }
        let mut host = host.into_iter();
        let mut x = || {
            host.next()
                .ok_or_else(|| RuntimeError::node(&node.name, node.op.name(), "missing operand"))
        };
        let c = &mut *self.comm;
        let out = match &node.op {
            Op::AxisIndex { axes } => axis_index(c.mesh(), c.position(), axes, node)?,
            Op::AllReduce { axes, func } => c.all_reduce(x()?, axes, *func)?,
            Op::AllGather { dim, axes } => c.all_gather(x()?, *dim, axes)?,
            Op::ReduceScatter { dim, axes, func } => c.reduce_scatter(x()?, *dim, axes, *func)?,
            Op::AllToAll {
                split_dim,
                concat_dim,
                axes,
            } => c.all_to_all(x()?, *split_dim, *concat_dim, axes)?,
            Op::CollectivePermute { axes, pairs } => c.collective_permute(x()?, axes, pairs)?,
            Op::Send { to_stage, tag } => {
                let to = peer(self.stages, *to_stage, c.position(), node)?;
                c.send(x()?, to, tag)?;
                // The send node's value is its operand, still on the GPU.
                return operands
                    .into_iter()
                    .next()
                    .ok_or_else(|| RuntimeError::node(&node.name, "send", "missing operand"));
            }
            Op::Recv { from_stage, tag } => {
                let from = peer(self.stages, *from_stage, c.position(), node)?;
                c.recv(from, tag, &node.ty)?
            }
            _ => {
                return Err(RuntimeError::node(
                    &node.name,
                    node.op.name(),
                    "not a mesh op (invariant)",
                ))
            }
        };
        gpu.upload(&out)
    }
}
