//! The GPU node loop: runs a verified per-device `ir::Graph` with every value in GPU memory,
//! the same programs the threads backend runs (the loop mirrors `crate::executor::run_graph`:
//! values are freed after their last use; collectives always run).
//!
//! Each node runs as: a fused elementwise kernel (chains of single-use elementwise nodes are one
//! kernel), cuBLAS (`dot_general`), a generated reduction, a layout kernel, a collective through
//! [`GpuMesh`], or, for what has no GPU kernel (see `codegen::Unsupported`), the CPU kernel on
//! a host copy of its operands (counted in `Gpu::host_fallbacks`).

use shardc_ir::{Graph, Node, Op, ValueId};

use super::blas::{self, DotDims};
use super::codegen::{
    elementwise_source, fused_at, fusion_targets, is_elementwise, reduce_source, Fused, Unsupported,
};
use super::device::{DeviceTensor, Gpu};
use super::layout;
use crate::error::RuntimeError;
use crate::executor::is_mesh_op;
use crate::kernels;
use crate::tensor::Tensor;

/// What a GPU device program needs beyond its kernels: `axis_index`, collectives, send/recv.
pub(crate) trait GpuMesh {
    /// Computes a mesh op; operands are owned (moved on their last use, copied otherwise).
    fn mesh_op(
        &mut self,
        gpu: &mut Gpu,
        node: &Node,
        operands: Vec<DeviceTensor>,
    ) -> Result<DeviceTensor, RuntimeError>;
    /// Called before each node (cancellation when a peer failed).
    fn before_node(&mut self) -> Result<(), RuntimeError> {
        Ok(())
    }
}

/// One GPU alone: mesh ops are errors.
pub(crate) struct NoMesh;

impl GpuMesh for NoMesh {
    fn mesh_op(
        &mut self,
        _: &mut Gpu,
        node: &Node,
        _: Vec<DeviceTensor>,
    ) -> Result<DeviceTensor, RuntimeError> {
        Err(RuntimeError::node(
            &node.name,
            node.op.name(),
            "needs a mesh (run_spmd_cuda), not the single-GPU executor",
        ))
    }
}

/// How each node is computed, decided before the loop.
enum Plan {
    /// Computed inside its consumer's fused kernel.
    Fused,
    /// The root of a fused elementwise kernel.
    Kernel(Fused),
    /// Anything else, from its own operands.
    Node,
}

fn plans(g: &Graph, needed: &[bool], wanted: &[bool]) -> Vec<Plan> {
    let targets = fusion_targets(g, needed, wanted);
    (0..g.nodes.len())
        .map(|i| {
            if targets[i].is_some() {
                Plan::Fused
            } else if needed[i] && is_elementwise(&g.nodes[i].op) {
                Plan::Kernel(fused_at(g, ValueId(i as u32), &targets))
            } else {
                Plan::Node
            }
        })
        .collect()
}

/// Runs `g` (verified; its inputs checked against `inputs`, already on the GPU) on `gpu` and
/// returns the values `wanted`, still on the GPU (queued: synchronize before timing).
pub(crate) fn run_graph_gpu(
    g: &Graph,
    inputs: Vec<DeviceTensor>,
    wanted: &[ValueId],
    gpu: &mut Gpu,
    mesh: &mut dyn GpuMesh,
) -> Result<Vec<DeviceTensor>, RuntimeError> {
    let n = g.nodes.len();
    let mut needed = vec![false; n];
    let mut is_wanted = vec![false; n];
    for w in wanted {
        needed[w.index()] = true;
        is_wanted[w.index()] = true;
    }
    for i in (0..n).rev() {
        if g.nodes[i].op.is_collective() {
            needed[i] = true;
        }
        if needed[i] {
            for o in &g.nodes[i].operands {
                needed[o.index()] = true;
            }
        }
    }
    let plans = plans(g, &needed, &is_wanted);
    let reads = |i: usize| -> Vec<ValueId> {
        match &plans[i] {
            Plan::Fused => Vec::new(),
            Plan::Kernel(f) => f.inputs.clone(),
            Plan::Node => g.nodes[i].operands.clone(),
        }
    };
    let mut last_use = vec![None; n];
    for i in (0..n).filter(|&i| needed[i]) {
        for o in reads(i) {
            last_use[o.index()] = Some(i);
        }
    }
    let mut values: Vec<Option<DeviceTensor>> = (0..n).map(|_| None).collect();
    let mut inputs = inputs.into_iter();
    for (i, node) in g.nodes.iter().enumerate() {
        let fed = match node.op {
            Op::Input { .. } => Some(inputs.next().ok_or_else(|| {
                RuntimeError::Invalid(format!("graph `{}`: too few inputs (invariant)", g.name))
            })?),
            _ => None,
        };
        if !needed[i] || matches!(plans[i], Plan::Fused) {
            continue;
        }
        mesh.before_node()?;
        let operands = reads(i);
        let missing = |o: &ValueId| {
            RuntimeError::node(
                &node.name,
                node.op.name(),
                format!("operand {o} was freed or never computed (invariant)"),
            )
        };
        let result = if let Some(t) = fed {
            t
        } else if is_mesh_op(&node.op) {
            let mut owned = Vec::with_capacity(operands.len());
            for o in &operands {
                let last = last_use[o.index()] == Some(i)
                    && !is_wanted[o.index()]
                    && operands.iter().filter(|&p| p == o).count() == 1;
                let t = if last {
                    values[o.index()].take().ok_or_else(|| missing(o))?
                } else {
                    let v = values[o.index()].as_ref().ok_or_else(|| missing(o))?;
                    gpu.clone_as(v, &v.ty)?
                };
                owned.push(t);
            }
            mesh.mesh_op(gpu, node, owned)?
        } else {
            let args: Vec<&DeviceTensor> = operands
                .iter()
                .map(|o| values[o.index()].as_ref().ok_or_else(|| missing(o)))
                .collect::<Result<_, _>>()?;
            let in_node =
                |e: RuntimeError| RuntimeError::node(&node.name, node.op.name(), e.to_string());
            match eval(gpu, g, node, &plans[i], &args).map_err(in_node)? {
                Ok(t) => t,
                Err(why) if matches!(&plans[i], Plan::Kernel(f) if f.nodes.len() > 1) => {
                    return Err(RuntimeError::node(
                        &node.name,
                        node.op.name(),
                        format!("fused elementwise kernel: {}", why.0),
                    ));
                }
                Err(_) => {
                    *gpu.host_fallbacks
                        .entry(node.op.name().to_string())
                        .or_insert(0) += 1;
                    on_host(gpu, node, &args).map_err(in_node)?
                }
            }
        };
        if result.ty != node.ty {
            return Err(RuntimeError::node(
                &node.name,
                node.op.name(),
                format!(
                    "computed a value of type {}, the node declares {}",
                    result.ty, node.ty
                ),
            ));
        }
        values[i] = Some(result);
        for o in operands {
            if last_use[o.index()] == Some(i) && !is_wanted[o.index()] {
                values[o.index()] = None;
            }
        }
    }
    let mut out = Vec::with_capacity(wanted.len());
    for (k, w) in wanted.iter().enumerate() {
        // A value wanted twice is moved out the last time and copied before.
        let again = wanted[k + 1..].contains(w);
        let v = if again {
            let v = values[w.index()].as_ref();
            v.map(|v| gpu.clone_as(v, &v.ty)).transpose()?
        } else {
            values[w.index()].take()
        };
        out.push(v.ok_or_else(|| {
            RuntimeError::Invalid(format!("value {w} was not computed (invariant)"))
        })?);
    }
    Ok(out)
}

/// The CPU kernel on host copies of the operands, its result copied back.
fn on_host(
    gpu: &mut Gpu,
    node: &Node,
    args: &[&DeviceTensor],
) -> Result<DeviceTensor, RuntimeError> {
    let host: Vec<Tensor> = args
        .iter()
        .map(|a| gpu.download(a))
        .collect::<Result<_, _>>()?;
    let refs: Vec<&Tensor> = host.iter().collect();
    let t = kernels::eval(node, &refs).map_err(RuntimeError::Invalid)?;
    gpu.upload(&t)
}

/// Whether `node` has a GPU kernel, and why not if it does not. The executor's choice, and
/// what the tests check for every op kind.
pub(crate) fn gpu_support(
    node: &Node,
    operand_types: &[&shardc_ir::TensorType],
) -> Result<(), Unsupported> {
    let ty = &node.ty;
    let unsigned = |d: shardc_ir::DType| matches!(d, shardc_ir::DType::U32 | shardc_ir::DType::U64);
    if unsigned(ty.dtype) || operand_types.iter().any(|t| unsigned(t.dtype)) {
        return Err(Unsupported(format!(
            "{} on unsigned integers has no GPU kernel (random-bit hashing runs on the host)",
            node.op.name()
        )));
    }
    match &node.op {
        Op::Unary { .. } | Op::Binary { .. } | Op::Compare { .. } | Op::Select | Op::Convert => {
            Ok(())
        }
        Op::Copy
        | Op::Reshape
        | Op::Broadcast { .. }
        | Op::Transpose { .. }
        | Op::Reverse { .. } => Ok(()),
        Op::Slice { .. }
        | Op::Concatenate { .. }
        | Op::DynamicSlice { .. }
        | Op::DynamicUpdateSlice => Ok(()),
        Op::Gather { .. } => Ok(()),
        Op::ScatterAdd { .. } if ty.dtype == shardc_ir::DType::Bool => {
            Err(Unsupported("scatter_add of bool has no kernel".into()))
        }
        Op::ScatterAdd { .. } => Ok(()),
        Op::Pad { low, high, .. } => layout::pad_supported(low, high),
        Op::Reduce { func, dims } => {
            let x = operand_types
                .first()
                .ok_or_else(|| Unsupported("reduce lacks its operand".into()))?;
            reduce_source(*func, x.dtype, x.dims(), dims).map(|_| ())
        }
        Op::DotGeneral {
            lhs_batch,
            lhs_contract,
            rhs_batch,
            rhs_contract,
        } => {
            let (Some(l), Some(r)) = (operand_types.first(), operand_types.get(1)) else {
                return Err(Unsupported("dot_general lacks its operands".into()));
            };
            let size = |t: &shardc_ir::TensorType, ds: &[usize]| {
                ds.iter().map(|&d| t.dims()[d]).product::<u64>()
            };
            let lfree: Vec<usize> = (0..l.rank())
                .filter(|d| !lhs_batch.contains(d) && !lhs_contract.contains(d))
                .collect();
            let rfree: Vec<usize> = (0..r.rank())
                .filter(|d| !rhs_batch.contains(d) && !rhs_contract.contains(d))
                .collect();
            blas::supported(
                ty.dtype,
                [
                    size(l, lhs_batch),
                    size(l, &lfree),
                    size(l, lhs_contract),
                    size(r, &rfree),
                ],
            )
        }
        Op::Constant { .. } | Op::Iota { .. } => Err(Unsupported(format!(
            "{} is a source: computed on the host and copied over",
            node.op.name()
        ))),
        Op::Convolution(_) => Err(Unsupported(
            "convolution has no GPU kernel yet (im2col + cuBLAS is not built)".into(),
        )),
        Op::Sort { .. } => Err(Unsupported("sort has no GPU kernel".into())),
        Op::BitcastConvert | Op::ReduceWindow { .. } | Op::SelectAndScatter { .. } => Err(
            Unsupported(format!("{} has no GPU kernel yet", node.op.name())),
        ),
        Op::GeneralGather(_) | Op::GeneralScatter { .. } => Err(Unsupported(format!(
            "{} (XLA's general form) has no GPU kernel",
            node.op.name()
        ))),
        Op::Input { .. } => Err(Unsupported("inputs are fed, not computed".into())),
        Op::AxisIndex { .. }
        | Op::AllReduce { .. }
        | Op::AllGather { .. }
        | Op::ReduceScatter { .. }
        | Op::AllToAll { .. }
        | Op::CollectivePermute { .. }
        | Op::Send { .. }
        | Op::Recv { .. } => Err(Unsupported(format!(
            "{} runs through the mesh, not a kernel",
            node.op.name()
        ))),
        Op::FullToShard { .. } | Op::ShardToFull { .. } => Err(Unsupported(format!(
            "{} (a manual region's boundary) has no kernel: partition the graph first",
            node.op.name()
        ))),
    }
}

/// Computes `node` on the GPU: `Ok(Err(why))` when it has no GPU kernel.
fn eval(
    gpu: &mut Gpu,
    g: &Graph,
    node: &Node,
    plan: &Plan,
    x: &[&DeviceTensor],
) -> Result<Result<DeviceTensor, Unsupported>, RuntimeError> {
    let types: Vec<&shardc_ir::TensorType> = node.operands.iter().map(|&o| g.ty(o)).collect();
    if let Err(u) = gpu_support(node, &types) {
        return Ok(Err(u));
    }
    let ty = &node.ty;
    let arg = |k: usize| {
        x.get(k)
            .copied()
            .ok_or_else(|| RuntimeError::Invalid(format!("missing operand {k}")))
    };
    let out = match (&node.op, plan) {
        (_, Plan::Kernel(f)) => {
            let source = match elementwise_source(g, f) {
                Ok(s) => s,
                Err(u) => return Ok(Err(u)),
            };
            let mut out = gpu.alloc(ty)?;
            let bufs: Vec<_> = x.iter().map(|t| &t.buf).collect();
            let n = out.len();
            gpu.launch(&source, n, false, &bufs, &mut [&mut out.buf])?;
            out
        }
        (Op::Copy, _) => gpu.clone_as(arg(0)?, ty)?,
        (Op::Reshape, _) => gpu.clone_as(arg(0)?, ty)?,
        (
            Op::DotGeneral {
                lhs_batch,
                rhs_batch,
                lhs_contract,
                rhs_contract,
            },
            _,
        ) => {
            let d = DotDims {
                lhs_batch,
                rhs_batch,
                lhs_contract,
                rhs_contract,
            };
            blas::dot_general(gpu, arg(0)?, arg(1)?, &d, ty)?
        }
        (Op::Reduce { func, dims }, _) => {
            let xin = arg(0)?;
            let source = match reduce_source(*func, xin.ty.dtype, xin.ty.dims(), dims) {
                Ok(s) => s,
                Err(u) => return Ok(Err(u)),
            };
            let mut out = gpu.alloc(ty)?;
            let n = out.len();
            gpu.launch(&source, n, true, &[&xin.buf], &mut [&mut out.buf])?;
            out
        }
        (Op::Broadcast { dims }, _) => layout::broadcast(gpu, arg(0)?, dims, ty)?,
        (Op::Transpose { perm }, _) => layout::permute(gpu, arg(0)?, perm)?,
        (Op::Reverse { dims }, _) => layout::reverse(gpu, arg(0)?, dims)?,
        (Op::Slice { start, stride, .. }, _) => layout::slice(gpu, arg(0)?, start, stride, ty)?,
        (Op::Concatenate { dim }, _) => layout::concatenate(gpu, x, *dim, ty)?,
        (
            Op::Pad {
                low,
                interior,
                value,
                ..
            },
            _,
        ) => layout::pad(gpu, arg(0)?, low, interior, *value, ty)?,
        (Op::DynamicSlice { .. }, _) => layout::dynamic_slice(gpu, arg(0)?, &x[1..], ty)?,
        (Op::DynamicUpdateSlice, _) => {
            layout::dynamic_update_slice(gpu, arg(0)?, arg(1)?, &x[2..])?
        }
        (Op::Gather { axis }, _) => layout::gather(gpu, arg(0)?, arg(1)?, *axis, ty)?,
        (Op::ScatterAdd { axis }, _) => layout::scatter_add(gpu, arg(0)?, arg(1)?, arg(2)?, *axis)?,
        (other, _) => {
            return Ok(Err(Unsupported(format!(
                "{} has no GPU kernel",
                other.name()
            ))))
        }
    };
    Ok(Ok(out))
}
