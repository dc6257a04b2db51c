//! Op cost: a roofline over FLOPs (from the op's factors) and bytes moved, at the fraction of
//! peak that each op class achieves.

use serde::{Deserialize, Serialize};
use shardc_ir::{Graph, Op, OpFactors, Sharding, ShardingAssignment, TensorType, ValueId};

use crate::cluster::Cluster;
use crate::error::{CostError, Result};
use crate::hardware::Precision;

/// Op classes that achieve different fractions of peak.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpClass {
    /// dot_general: tensor cores, compute-bound at transformer sizes.
    Matmul,
    Conv,
    /// Elementwise and data movement (transpose, slice, gather): memory-bound.
    Elementwise,
    Reduction,
    /// Costs nothing at run time: inputs, constants, reshape (a view), collectives (priced
    /// separately from `CommUse`s).
    Free,
}

impl OpClass {
    /// The class of an op.
    pub fn of(op: &Op) -> Self {
        match op {
            Op::DotGeneral { .. } => OpClass::Matmul,
            Op::Convolution(_) => OpClass::Conv,
            Op::Reduce { .. } => OpClass::Reduction,
            Op::Input { .. } | Op::Constant { .. } | Op::Reshape | Op::AxisIndex { .. } => {
                OpClass::Free
            }
            op if op.is_collective() => OpClass::Free,
            _ => OpClass::Elementwise,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            OpClass::Matmul => "matmul",
            OpClass::Conv => "conv",
            OpClass::Elementwise => "elementwise",
            OpClass::Reduction => "reduction",
            OpClass::Free => "free",
        }
    }
}

/// The work of one op on one device: what the roofline prices.
#[derive(Copy, Clone, Debug, PartialEq, Serialize)]
pub struct OpWork {
    pub class: OpClass,
    pub precision: Precision,
    pub flops: f64,
    /// Bytes read and written (operands once, result once: no fusion assumed).
    pub bytes: f64,
}

/// One micro-batch's gradient accumulation over `gradient_bytes` of local parameter gradients:
/// with `m > 1` micro-batches the framework adds each micro-batch's gradient into a buffer of
/// the gradient's dtype, reading the new gradient and the buffer and writing the buffer (three
/// times the gradient's bytes). Megatron-LM's DDP does this in a hook on every parameter
/// (`param.main_grad.add_(param.grad.data)`, `megatron/model/distributed.py`, as it ran in
/// Narayanan et al. SC21; fusing it into the weight-gradient GEMM came later). Zero when
/// `m = 1`: the whole-batch gradient is written once.
pub(crate) fn gradient_accumulation(gradient_bytes: f64, m: u64) -> OpWork {
    let bytes = if m > 1 { 3.0 * gradient_bytes } else { 0.0 };
    OpWork {
        class: if m > 1 {
            OpClass::Elementwise
        } else {
            OpClass::Free
        },
        precision: Precision::Fp32,
        flops: bytes / 6.0,
        bytes,
    }
}

/// Roofline time at peak: the larger of compute time and memory time.
pub fn ideal_time(work: &OpWork, cluster: &Cluster) -> f64 {
    if work.class == OpClass::Free {
        return 0.0;
    }
    let d = &cluster.device;
    let compute = work.flops / d.peak_flops.get(work.precision);
    let memory = work.bytes / d.memory.bandwidth_bytes_per_s;
    compute.max(memory)
}

/// Time of one op on one device: a measured time from the calibration profile when one matches,
/// otherwise the roofline at the achievable fraction of peak for the op's class (for a matmul
/// of unknown shape, the large-shape fraction; [`op_time_shaped`] takes the shape into account).
pub fn op_time(work: &OpWork, cluster: &Cluster) -> f64 {
    op_time_shaped(work, None, cluster)
}

/// The local shape of a matmul on one device: `batch` independent products of an `m × k` and a
/// `k × n` matrix (sizes as `f64`, after sharding).
#[derive(Copy, Clone, Debug, PartialEq, Serialize)]
pub struct MatmulDims {
    pub batch: f64,
    pub m: f64,
    pub n: f64,
    pub k: f64,
}

impl MatmulDims {
    /// FLOPs of the product: `2·batch·m·n·k`.
    pub fn flops(&self) -> f64 {
        2.0 * self.batch * self.m * self.n * self.k
    }
}

/// [`op_time`] with the matmul's local shape: compute at `matmul · g(m)·g(n)·g(k)` of peak
/// ([`crate::MatmulShapeCurve`]), memory at the elementwise fraction of the bandwidth, whichever
/// binds. Other classes (or `dims = None`) are priced as [`op_time`] documents.
pub fn op_time_shaped(work: &OpWork, dims: Option<&MatmulDims>, cluster: &Cluster) -> f64 {
    let cal = &cluster.calibration;
    if let Some(t) = cal.measured_op(work) {
        return t;
    }
    match (work.class, dims) {
        (OpClass::Free, _) => 0.0,
        (OpClass::Matmul, Some(d)) => {
            let dev = &cluster.device;
            let fraction = cal.matmul_fraction(d.m, d.n, d.k);
            let compute = work.flops / (dev.peak_flops.get(work.precision) * fraction);
            let memory = work.bytes / (dev.memory.bandwidth_bytes_per_s * cal.elementwise);
            compute.max(memory)
        }
        (class, _) => ideal_time(work, cluster) / cal.fraction(class),
    }
}

/// The time of one matmul of local shape `dims` with elements of `elem_bytes` bytes, in
/// `precision`, on one device of `cluster`: the planner's per-op query for a dot whose operands
/// and result are read and written once.
pub fn matmul_time(
    dims: &MatmulDims,
    precision: Precision,
    elem_bytes: f64,
    cluster: &Cluster,
) -> f64 {
    let MatmulDims { batch, m, n, k } = *dims;
    let work = OpWork {
        class: OpClass::Matmul,
        precision,
        flops: dims.flops(),
        bytes: elem_bytes * batch * (m * k + k * n + m * n),
    };
    op_time_shaped(&work, Some(dims), cluster)
}

/// The local shape of a `dot_general` from its factors and the axes that shard each: batch
/// factors (in both operands and the result), `m` (left operand and result), `n` (right operand
/// and result) and `k` (contracted), each divided by its axes' sizes.
fn dot_dims(f: &OpFactors, axes: &[Vec<&str>], mesh: &shardc_ir::Mesh) -> MatmulDims {
    let mut d = MatmulDims {
        batch: 1.0,
        m: 1.0,
        n: 1.0,
        k: 1.0,
    };
    let has = |dims: Option<&Vec<Vec<usize>>>, i: usize| {
        dims.is_some_and(|ds| ds.iter().any(|fs| fs.contains(&i)))
    };
    for (i, fac) in f.factors.iter().enumerate() {
        let split: u64 = axes[i]
            .iter()
            .map(|a| mesh.axis_size(a).unwrap_or(1))
            .product();
        let local = fac.size.div_ceil(split.max(1)) as f64;
        let (lhs, rhs) = (has(f.operands.first(), i), has(f.operands.get(1), i));
        let slot = if fac.kind == shardc_ir::FactorKind::Reduction {
            &mut d.k
        } else if lhs && rhs {
            &mut d.batch
        } else if lhs {
            &mut d.m
        } else {
            &mut d.n
        };
        *slot *= local;
    }
    d
}

/// The axes that shard each factor of an op, read from its operands' and result's shardings.
/// A dim listing several factors (a reshape's compound dim) is split major factor first, so its
/// axes go to its first factor. The result's partial axes shard the reduction factors: they are
/// what makes the result partial, so they are credited to the first reduction factor.
fn factor_axes<'a>(
    f: &OpFactors,
    operands: &[&'a Sharding],
    result: &'a Sharding,
) -> Vec<Vec<&'a str>> {
    let mut axes: Vec<Vec<&str>> = vec![Vec::new(); f.factors.len()];
    // As the sharding crate's `op_needs` settles an op, the result's factors keep exactly the
    // result's axes (an operand split where the result is whole is gathered first), the other
    // factors follow the operands, and an axis splits at most one factor: a sequence-sharded
    // activation times a row-split weight splits the work once over `tp`, not twice. (Where the
    // partitioner takes the contraction first instead, the count is the same.)
    let in_result: Vec<usize> = f.result.iter().flatten().copied().collect();
    let mut credit = |dims: &[Vec<usize>], s: &'a Sharding, skip: &[usize]| {
        for (d, fs) in dims.iter().enumerate() {
            if let (Some(&first), Some(ds)) = (fs.first(), s.dims.get(d)) {
                if skip.contains(&first) {
                    continue;
                }
                for a in &ds.axes {
                    if !axes.iter().flatten().any(|x| x == a) {
                        axes[first].push(a);
                    }
                }
            }
        }
    };
    credit(&f.result, result, &[]);
    for (dims, s) in f.operands.iter().zip(operands) {
        credit(dims, s, &in_result);
    }
    if let Some(r) = f
        .factors
        .iter()
        .position(|x| x.kind == shardc_ir::FactorKind::Reduction)
    {
        for a in &result.partial {
            if !axes.iter().flatten().any(|x| x == a) {
                axes[r].push(a);
            }
        }
    }
    axes
}

/// The local (per-device) bytes of a value under a sharding.
pub fn local_bytes(ty: &TensorType, s: &Sharding, mesh: &shardc_ir::Mesh) -> f64 {
    let elems: f64 = ty
        .dims()
        .iter()
        .enumerate()
        .map(|(d, &n)| {
            if d < s.rank() {
                s.local_dim(mesh, d, n) as f64
            } else {
                n as f64
            }
        })
        .product();
    elems * ty.dtype.size_bytes() as f64
}

/// The work of node `v` on one device under `assignment`: the global FLOPs (from the op's
/// factors) divided by the sizes of the axes that shard any factor, and the local bytes of its
/// operands and result.
pub fn local_work(g: &Graph, v: ValueId, assignment: &ShardingAssignment) -> Result<OpWork> {
    local_op(g, v, assignment).map(|l| l.work)
}

/// The time of node `v` on one device under `assignment`, alone (no fusion with its
/// neighbours): [`local_work`] priced by [`op_time_shaped`] with the matmul's local shape. The
/// planner's per-node query; [`crate::graph_step`] prices fusion regions instead.
pub fn node_time(
    g: &Graph,
    v: ValueId,
    assignment: &ShardingAssignment,
    cluster: &Cluster,
) -> Result<f64> {
    let l = local_op(g, v, assignment)?;
    Ok(op_time_shaped(&l.work, l.dims.as_ref(), cluster))
}

/// One node's local work, its global FLOPs and (for a matmul) its local shape.
pub(crate) struct LocalOp {
    pub work: OpWork,
    pub global_flops: f64,
    pub dims: Option<MatmulDims>,
}

/// [`local_work`], the op's global FLOPs and a matmul's local shape, from one derivation of its
/// factors.
pub(crate) fn local_op(g: &Graph, v: ValueId, assignment: &ShardingAssignment) -> Result<LocalOp> {
    let n = g.node(v);
    let class = OpClass::of(&n.op);
    let precision = Precision::of(n.ty.dtype, false);
    if class == OpClass::Free {
        let free = OpWork {
            class,
            precision,
            flops: 0.0,
            bytes: 0.0,
        };
        return Ok(LocalOp {
            work: free,
            global_flops: 0.0,
            dims: None,
        });
    }
    let sharding = |u: ValueId| -> Result<&Sharding> {
        let s = assignment.shardings.get(u.index()).ok_or_else(|| {
            CostError::Mismatch(format!(
                "the sharding assignment has {} entries, the graph {} nodes (no sharding for `{}`)",
                assignment.shardings.len(),
                g.len(),
                g.node(u).name
            ))
        })?;
        if s.rank() != g.ty(u).rank() {
            return Err(CostError::Mismatch(format!(
                "sharding of `{}` has {} dims, its type {} has rank {}",
                g.node(u).name,
                s.rank(),
                g.ty(u),
                g.ty(u).rank()
            )));
        }
        Ok(s)
    };
    let ops: Vec<&Sharding> = n
        .operands
        .iter()
        .map(|&o| sharding(o))
        .collect::<Result<_>>()?;
    let res = sharding(v)?;
    let mesh = &assignment.mesh;
    let f = g.factors(v);
    let axes = factor_axes(&f, &ops, res);
    let mut split = 1.0f64;
    for a in axes.iter().flatten() {
        split *= mesh.axis_size(a).unwrap_or(1) as f64;
    }
    let result_bytes = local_bytes(&n.ty, res, mesh);
    let mut bytes = result_bytes;
    for (i, (&o, s)) in n.operands.iter().zip(&ops).enumerate() {
        let b = local_bytes(g.ty(o), s, mesh);
        // A gather reads the rows it picks, not its whole table.
        let gathers = matches!(n.op, Op::Gather { .. } | Op::GeneralGather(_));
        bytes += if gathers && i == 0 {
            b.min(result_bytes)
        } else {
            b
        };
    }
    let dims = match n.op {
        Op::DotGeneral { .. } => Some(dot_dims(&f, &axes, mesh)),
        _ => None,
    };
    // Matmuls run in the precision of their inputs (bf16 inputs, f32 accumulation) on tensor
    // cores; everything else on the vector units, at the fp32 rate (fp64 for f64).
    let precision = match n.operands.first() {
        Some(&o) if class == OpClass::Matmul || class == OpClass::Conv => {
            Precision::of(g.ty(o).dtype, false)
        }
        _ if precision == Precision::Fp64 => Precision::Fp64,
        _ => Precision::Fp32,
    };
    // Gathers and scatters move data: a scatter adds each update once; the factors' iteration
    // space (table × updates) is not work that runs.
    let global = match &n.op {
        Op::Gather { .. } | Op::GeneralGather(_) | Op::DynamicSlice { .. } => 0.0,
        Op::ScatterAdd { .. } | Op::GeneralScatter { .. } | Op::DynamicUpdateSlice => n
            .operands
            .last()
            .map_or(0.0, |&u| g.ty(u).dims().iter().product::<u64>() as f64),
        _ => f.flops() as f64,
    };
    let work = OpWork {
        class,
        precision,
        flops: global / split,
        bytes,
    };
    Ok(LocalOp {
        work,
        global_flops: global,
        dims,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use shardc_ir::{DType, Mesh, Role};

    /// `y[b,n] = x[b,k] · w[k,n]` with b=8, k=16, n=32.
    fn matmul_graph() -> (Graph, ValueId) {
        let mut g = Graph::new("mm");
        let x = g
            .push(
                "x",
                Op::Input { init: None },
                vec![],
                Some(TensorType::new(DType::BF16, vec![8, 16])),
            )
            .unwrap();
        let w = g
            .push(
                "w",
                Op::Input { init: None },
                vec![],
                Some(TensorType::new(DType::BF16, vec![16, 32])),
            )
            .unwrap();
        g.nodes[w.index()].role = Role::Parameter;
        let dot = Op::DotGeneral {
            lhs_batch: vec![],
            rhs_batch: vec![],
            lhs_contract: vec![1],
            rhs_contract: vec![0],
        };
        let y = g.push("y", dot, vec![x, w], None).unwrap();
        (g, y)
    }

    fn assign(mesh: &str, s: [Sharding; 3]) -> ShardingAssignment {
        ShardingAssignment {
            mesh: mesh.parse::<Mesh>().unwrap(),
            shardings: s.to_vec(),
        }
    }

    #[test]
    fn local_flops_divide_by_every_axis_that_shards_a_factor() {
        let (g, y) = matmul_graph();
        let global = 2.0 * 8.0 * 16.0 * 32.0;
        // Batch over dp=2, columns over tp=4: 1/8 of the FLOPs per device.
        let a = assign(
            "dp=2,tp=4",
            [
                Sharding::from_dims(&[&["dp"], &[]]),
                Sharding::from_dims(&[&[], &["tp"]]),
                Sharding::from_dims(&[&["dp"], &["tp"]]),
            ],
        );
        let w = local_work(&g, y, &a).unwrap();
        assert_eq!(w.flops, global / 8.0);
        assert_eq!(w.bytes, (4 * 16 + 16 * 8 + 4 * 8) as f64 * 2.0);
        assert_eq!((w.class, w.precision), (OpClass::Matmul, Precision::Bf16));
        // Row-parallel: the contracted dim over tp leaves a partial result, still 1/4 the work.
        let mut partial = Sharding::replicated(2);
        partial.partial = vec!["tp".into()];
        let a = assign(
            "dp=2,tp=4",
            [
                Sharding::from_dims(&[&[], &["tp"]]),
                Sharding::from_dims(&[&["tp"], &[]]),
                partial,
            ],
        );
        assert_eq!(local_work(&g, y, &a).unwrap().flops, global / 4.0);
        // Replicated: every device does everything.
        let r = assign(
            "dp=2,tp=4",
            [
                Sharding::replicated(2),
                Sharding::replicated(2),
                Sharding::replicated(2),
            ],
        );
        assert_eq!(local_work(&g, y, &r).unwrap().flops, global);
    }

    #[test]
    fn a_short_assignment_is_an_error_naming_the_node() {
        let (g, y) = matmul_graph();
        let a = ShardingAssignment {
            mesh: "dp=2".parse().unwrap(),
            shardings: vec![Sharding::replicated(2)],
        };
        let e = local_work(&g, y, &a).unwrap_err().to_string();
        assert!(e.contains("no sharding for `w`"), "{e}");
    }

    #[test]
    fn roofline_takes_the_binding_limit_at_the_achievable_fraction() {
        let c = Cluster::parse("a100-80gb:1x8", &crate::Catalog::builtin()).unwrap();
        let mm = OpWork {
            class: OpClass::Matmul,
            precision: Precision::Bf16,
            flops: 312e12,
            bytes: 1e9,
        };
        // 1 s at peak, 0.8 achievable for a large matmul.
        assert!((op_time(&mm, &c) - 1.0 / 0.8).abs() < 1e-12);
        // A skinny local shape gets less: k = 64 halves the rate.
        let skinny = MatmulDims {
            batch: 1.0,
            m: 1e9,
            n: 1e9,
            k: 64.0,
        };
        let t = op_time_shaped(&mm, Some(&skinny), &c);
        assert!((t - 2.0 / 0.8).abs() < 1e-6, "{t}");
        let ew = OpWork {
            class: OpClass::Elementwise,
            precision: Precision::Bf16,
            flops: 1e9,
            bytes: 2039e9,
        };
        assert!((op_time(&ew, &c) - 1.0 / 0.8).abs() < 1e-12);
    }
}
