//! XLA's general `gather` and `scatter` (`general_gather`, `general_scatter`): dimension numbers,
//! their validity checks (as XLA's shape inference makes them), shape rules and factors. The
//! gradient rules are in `xla_gather_grad.rs`.
//!
//! Semantics follow <https://openxla.org/xla/operation_semantics#gather> and `#scatter`: a
//! gather clamps each start index so that its slice fits; a scatter skips every update window
//! that does not fit.

use super::{with_declared_dtype_check, TypeCtx};
use crate::factors::{FactorKind, OpFactors};
use crate::op::{BinaryFn, GatherDims, Op, ScatterDims};
use crate::types::TensorType;

/// How the dims of a general gather's operand, start indices and result correspond.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GatherGeometry {
    /// The result's shape.
    pub result_dims: Vec<u64>,
    /// The indices' dims other than the index vector dim, ascending ("batch" dims).
    pub batch_index_dims: Vec<usize>,
    /// The result dims not in `offset_dims`, ascending: result batch dim `k` is indices dim
    /// `batch_index_dims[k]`.
    pub result_batch_dims: Vec<usize>,
    /// The operand dims that are neither collapsed nor batching, ascending: `offset_dims[j]`
    /// holds operand dim `offset_operand_dims[j]` of the slice.
    pub offset_operand_dims: Vec<usize>,
    /// The length of an index vector (1 when the index vector dim is implicit).
    pub index_vector_len: usize,
}

/// How the dims of a general scatter's operand, indices and updates correspond.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScatterGeometry {
    /// The indices' dims other than the index vector dim, ascending.
    pub batch_index_dims: Vec<usize>,
    /// The updates dims not in `update_window_dims`, ascending: updates scatter dim `k` is
    /// indices dim `batch_index_dims[k]`.
    pub update_scatter_dims: Vec<usize>,
    /// The operand dims that are neither inserted nor batching, ascending:
    /// `update_window_dims[j]` is operand dim `window_operand_dims[j]` of the window.
    pub window_operand_dims: Vec<usize>,
    /// The window's extent in every operand dim (1 in inserted and batching dims).
    pub window_sizes: Vec<u64>,
    /// The length of an index vector (1 when the index vector dim is implicit).
    pub index_vector_len: usize,
}

/// Checks that `dims` are ascending (hence distinct) and below `bound`.
fn check_sorted(what: &str, dims: &[usize], bound: usize, of: &str) -> Result<(), String> {
    for (i, &d) in dims.iter().enumerate() {
        if d >= bound {
            return Err(format!("{what} {dims:?}: dim {d} is out of range for {of}"));
        }
        if i > 0 && dims[i - 1] >= d {
            return Err(format!("{what} {dims:?} must be ascending without repeats"));
        }
    }
    Ok(())
}

/// Checks that `dims` are distinct and below `bound` (any order).
fn check_distinct(what: &str, dims: &[usize], bound: usize, of: &str) -> Result<(), String> {
    let mut seen = vec![false; bound];
    for &d in dims {
        if d >= bound {
            return Err(format!("{what} {dims:?}: dim {d} is out of range for {of}"));
        }
        if seen[d] {
            return Err(format!("{what} {dims:?} lists dim {d} twice"));
        }
        seen[d] = true;
    }
    Ok(())
}

/// `(0..n)` without the members of `skip`, ascending.
fn others(n: usize, skip: &[&[usize]]) -> Vec<usize> {
    (0..n)
        .filter(|d| !skip.iter().any(|s| s.contains(d)))
        .collect()
}

/// The index vector length and the batch dims of `indices` for `index_vector_dim`.
fn index_dims(indices: &[u64], ivd: usize) -> Result<(usize, Vec<usize>), String> {
    let r = indices.len();
    if ivd > r {
        return Err(format!(
            "index_vector_dim {ivd} is out of range for indices of rank {r} (at most {r})"
        ));
    }
    let len = if ivd == r { 1 } else { indices[ivd] as usize };
    Ok((len, others(r, &[&[ivd]])))
}

/// Checks the pairing of operand batching dims with indices batching dims.
fn check_batching(
    operand_dims: &[usize],
    index_dims: &[usize],
    operand: &[u64],
    indices: &[u64],
    ivd: usize,
    names: (&str, &str),
) -> Result<(), String> {
    check_distinct(names.1, index_dims, indices.len(), "the indices")?;
    if index_dims.len() != operand_dims.len() {
        return Err(format!(
            "{} {index_dims:?} must pair one for one with {} {operand_dims:?}",
            names.1, names.0
        ));
    }
    for (&o, &i) in operand_dims.iter().zip(index_dims) {
        if i == ivd {
            return Err(format!(
                "{} {index_dims:?} must not contain the index_vector_dim {ivd}",
                names.1
            ));
        }
        if operand[o] != indices[i] {
            return Err(format!(
                "operand batching dim {o} (size {}) and indices batching dim {i} (size {}) differ in size",
                operand[o], indices[i]
            ));
        }
    }
    Ok(())
}

impl GatherDims {
    /// Checks these dimension numbers against an operand and start indices of these shapes (the
    /// checks of XLA's shape inference) and says how their dims correspond.
    pub fn geometry(&self, operand: &[u64], indices: &[u64]) -> Result<GatherGeometry, String> {
        let r = operand.len();
        let ivd = self.index_vector_dim;
        let (index_vector_len, batch_index_dims) = index_dims(indices, ivd)?;
        if self.slice_sizes.len() != r {
            return Err(format!(
                "slice_sizes {:?} has {} entries, the operand has rank {r}",
                self.slice_sizes,
                self.slice_sizes.len()
            ));
        }
        for (d, (&s, &n)) in self.slice_sizes.iter().zip(operand).enumerate() {
            if s > n {
                return Err(format!(
                    "slice_sizes[{d}] = {s} exceeds operand dim {d} of size {n}"
                ));
            }
        }
        check_sorted(
            "collapsed_slice_dims",
            &self.collapsed_slice_dims,
            r,
            "the operand",
        )?;
        check_sorted(
            "operand_batching_dims",
            &self.operand_batching_dims,
            r,
            "the operand",
        )?;
        for (what, dims) in [
            ("collapsed_slice_dims", &self.collapsed_slice_dims),
            ("operand_batching_dims", &self.operand_batching_dims),
        ] {
            if let Some(&d) = dims.iter().find(|&&d| self.slice_sizes[d] > 1) {
                return Err(format!(
                    "{what} contains dim {d} whose slice size is {} (it must be at most 1)",
                    self.slice_sizes[d]
                ));
            }
        }
        if let Some(d) = self
            .collapsed_slice_dims
            .iter()
            .find(|d| self.operand_batching_dims.contains(d))
        {
            return Err(format!(
                "dim {d} is in both collapsed_slice_dims and operand_batching_dims"
            ));
        }
        let offset_operand_dims = others(
            r,
            &[&self.collapsed_slice_dims, &self.operand_batching_dims],
        );
        if self.offset_dims.len() != offset_operand_dims.len() {
            return Err(format!(
                "offset_dims {:?} must have one entry per operand dim that is neither collapsed nor batching ({} of them)",
                self.offset_dims,
                offset_operand_dims.len()
            ));
        }
        let out_rank = batch_index_dims.len() + self.offset_dims.len();
        check_sorted("offset_dims", &self.offset_dims, out_rank, "the result")?;
        if self.start_index_map.len() != index_vector_len {
            return Err(format!(
                "start_index_map {:?} has {} entries, the index vector (dim {ivd} of the indices) has {index_vector_len}",
                self.start_index_map,
                self.start_index_map.len()
            ));
        }
        check_distinct("start_index_map", &self.start_index_map, r, "the operand")?;
        if let Some(d) = self
            .start_index_map
            .iter()
            .find(|d| self.operand_batching_dims.contains(d))
        {
            return Err(format!("start_index_map indexes operand batching dim {d}"));
        }
        check_batching(
            &self.operand_batching_dims,
            &self.start_indices_batching_dims,
            operand,
            indices,
            ivd,
            ("operand_batching_dims", "start_indices_batching_dims"),
        )?;
        let result_batch_dims = others(out_rank, &[&self.offset_dims]);
        let mut result_dims = vec![0u64; out_rank];
        for (&o, &i) in result_batch_dims.iter().zip(&batch_index_dims) {
            result_dims[o] = indices[i];
        }
        for (&o, &d) in self.offset_dims.iter().zip(&offset_operand_dims) {
            result_dims[o] = self.slice_sizes[d];
        }
        Ok(GatherGeometry {
            result_dims,
            batch_index_dims,
            result_batch_dims,
            offset_operand_dims,
            index_vector_len,
        })
    }
}

impl ScatterDims {
    /// Checks these dimension numbers against an operand, indices and updates of these shapes
    /// (the checks of XLA's shape inference) and says how their dims correspond.
    pub fn geometry(
        &self,
        operand: &[u64],
        indices: &[u64],
        updates: &[u64],
    ) -> Result<ScatterGeometry, String> {
        let r = operand.len();
        let ivd = self.index_vector_dim;
        let (index_vector_len, batch_index_dims) = index_dims(indices, ivd)?;
        check_sorted(
            "update_window_dims",
            &self.update_window_dims,
            updates.len(),
            "the updates",
        )?;
        check_sorted(
            "inserted_window_dims",
            &self.inserted_window_dims,
            r,
            "the operand",
        )?;
        check_sorted(
            "input_batching_dims",
            &self.input_batching_dims,
            r,
            "the operand",
        )?;
        if let Some(d) = self
            .inserted_window_dims
            .iter()
            .find(|d| self.input_batching_dims.contains(d))
        {
            return Err(format!(
                "dim {d} is in both inserted_window_dims and input_batching_dims"
            ));
        }
        let window_operand_dims =
            others(r, &[&self.inserted_window_dims, &self.input_batching_dims]);
        if self.update_window_dims.len() != window_operand_dims.len() {
            return Err(format!(
                "update_window_dims {:?} must have one entry per operand dim that is neither inserted nor batching ({} of them)",
                self.update_window_dims,
                window_operand_dims.len()
            ));
        }
        let update_scatter_dims = others(updates.len(), &[&self.update_window_dims]);
        if update_scatter_dims.len() != batch_index_dims.len() {
            return Err(format!(
                "the updates have {} scatter dims (not in update_window_dims), the indices have {} dims besides the index vector dim",
                update_scatter_dims.len(),
                batch_index_dims.len()
            ));
        }
        for (&u, &i) in update_scatter_dims.iter().zip(&batch_index_dims) {
            if updates[u] != indices[i] {
                return Err(format!(
                    "updates scatter dim {u} (size {}) differs from indices dim {i} (size {})",
                    updates[u], indices[i]
                ));
            }
        }
        let mut window_sizes = vec![1u64; r];
        for (&u, &d) in self.update_window_dims.iter().zip(&window_operand_dims) {
            if updates[u] > operand[d] {
                return Err(format!(
                    "updates window dim {u} (size {}) exceeds operand dim {d} (size {})",
                    updates[u], operand[d]
                ));
            }
            window_sizes[d] = updates[u];
        }
        if self.scatter_dims_to_operand_dims.len() != index_vector_len {
            return Err(format!(
                "scatter_dims_to_operand_dims {:?} has {} entries, the index vector (dim {ivd} of the indices) has {index_vector_len}",
                self.scatter_dims_to_operand_dims,
                self.scatter_dims_to_operand_dims.len()
            ));
        }
        check_distinct(
            "scatter_dims_to_operand_dims",
            &self.scatter_dims_to_operand_dims,
            r,
            "the operand",
        )?;
        if let Some(d) = self
            .scatter_dims_to_operand_dims
            .iter()
            .find(|d| self.input_batching_dims.contains(d))
        {
            return Err(format!(
                "scatter_dims_to_operand_dims indexes input batching dim {d}"
            ));
        }
        check_batching(
            &self.input_batching_dims,
            &self.scatter_indices_batching_dims,
            operand,
            indices,
            ivd,
            ("input_batching_dims", "scatter_indices_batching_dims"),
        )?;
        Ok(ScatterGeometry {
            batch_index_dims,
            update_scatter_dims,
            window_operand_dims,
            window_sizes,
            index_vector_len,
        })
    }
}

pub(super) fn infer(op: &Op, cx: &TypeCtx) -> std::result::Result<TensorType, String> {
    match op {
        Op::GeneralGather(dims) => {
            cx.expect_operands(2)?;
            let (x, idx) = (cx.operands[0], cx.operands[1]);
            if !idx.dtype.is_int() {
                return Err(format!("start indices must be integers, got {idx}"));
            }
            let g = dims.geometry(x.dims(), idx.dims())?;
            with_declared_dtype_check(cx, TensorType::new(x.dtype, g.result_dims))
        }
        Op::GeneralScatter { dims, combine } => {
            cx.expect_operands(3)?;
            let (x, idx, upd) = (cx.operands[0], cx.operands[1], cx.operands[2]);
            if !idx.dtype.is_int() {
                return Err(format!("scatter indices must be integers, got {idx}"));
            }
            if upd.dtype != x.dtype {
                return Err(format!(
                    "updates {upd} must have the operand's dtype {}",
                    x.dtype
                ));
            }
            match combine {
                None | Some(BinaryFn::Max | BinaryFn::Min) => {}
                Some(BinaryFn::Add | BinaryFn::Mul) if x.dtype != crate::DType::Bool => {}
                Some(f) => {
                    return Err(format!(
                        "a scatter combines with add, mul, max or min (or replaces), not {} on {}",
                        f.name(),
                        x.dtype
                    ))
                }
            }
            dims.geometry(x.dims(), idx.dims(), upd.dims())?;
            with_declared_dtype_check(cx, x.clone())
        }
        _ => unreachable!("xla_gather::infer called on {}", op.name()),
    }
}

/// Factors of a general gather or scatter.
///
/// Gather: an operand batching dim shares one pass-through factor with its indices batching dim
/// and that dim's result batch dim; an operand dim that is not collapsed and sliced whole shares
/// one with its result offset dim (indexed or not: a whole slice always starts at 0); the other
/// indices dims share one with their result batch dims. Collapsed or partially sliced operand
/// dims, their offset dims and the index vector dim need replication.
///
/// Scatter mirrors it (operand dims are also result dims): batching dims pass through all four
/// tensors; a whole window dim passes through operand, result and updates; the
/// indices' batch dims and the updates' scatter dims form a reduction factor for an `add`
/// combiner (each device scatters its share of the updates; the result is a pending sum, the
/// partitioner enters the operand as a pending sum too) and need replication otherwise.
///
/// Both are memory-bound moves: `flops_per_point` is 0 (a product over these factors would
/// count the operand's indexed dims as if every update touched all of them).
pub(super) fn factors(op: &Op, operands: &[&TensorType], _result: &TensorType) -> OpFactors {
    match op {
        Op::GeneralGather(dims) => gather_factors(dims, operands),
        Op::GeneralScatter { dims, combine } => scatter_factors(dims, *combine, operands),
        _ => unreachable!("xla_gather::factors called on {}", op.name()),
    }
}

fn gather_factors(dims: &GatherDims, operands: &[&TensorType]) -> OpFactors {
    let (x, idx) = (operands[0].dims(), operands[1].dims());
    // invariant: factors are read off verified graphs, whose gathers passed `geometry`.
    let g = dims
        .geometry(x, idx)
        .expect("invariant: the gather was verified");
    let mut f = OpFactors::default();
    let mut xs: Vec<Vec<usize>> = vec![Vec::new(); x.len()];
    let mut is: Vec<Vec<usize>> = vec![Vec::new(); idx.len()];
    let mut out: Vec<Vec<usize>> = vec![Vec::new(); g.result_dims.len()];
    for (k, &i) in g.batch_index_dims.iter().enumerate() {
        let o = g.result_batch_dims[k];
        let fac = match dims
            .start_indices_batching_dims
            .iter()
            .position(|&b| b == i)
        {
            Some(p) => {
                let fac = f.add(idx[i], FactorKind::PassThrough);
                xs[dims.operand_batching_dims[p]] = vec![fac];
                fac
            }
            None => f.add(idx[i], FactorKind::PassThrough),
        };
        is[i] = vec![fac];
        out[o] = vec![fac];
    }
    if dims.index_vector_dim < idx.len() {
        is[dims.index_vector_dim] =
            vec![f.add(idx[dims.index_vector_dim], FactorKind::NeedReplication)];
    }
    let offset_of = |d: usize| {
        g.offset_operand_dims
            .iter()
            .position(|&od| od == d)
            .map(|j| dims.offset_dims[j])
    };
    for d in 0..x.len() {
        if dims.operand_batching_dims.contains(&d) {
            continue;
        }
        // An indexed dim sliced whole always starts at 0 (the start clamps): it passes too.
        let whole = dims.slice_sizes[d] == x[d];
        match offset_of(d) {
            Some(o) if whole => {
                let fac = f.add(x[d], FactorKind::PassThrough);
                xs[d] = vec![fac];
                out[o] = vec![fac];
            }
            Some(o) => {
                xs[d] = vec![f.add(x[d], FactorKind::NeedReplication)];
                out[o] = vec![f.add(dims.slice_sizes[d], FactorKind::NeedReplication)];
            }
            None => xs[d] = vec![f.add(x[d], FactorKind::NeedReplication)],
        }
    }
    f.operands = vec![xs, is];
    f.result = out;
    f
}

fn scatter_factors(
    dims: &ScatterDims,
    combine: Option<BinaryFn>,
    operands: &[&TensorType],
) -> OpFactors {
    let (x, idx, upd) = (operands[0].dims(), operands[1].dims(), operands[2].dims());
    // invariant: factors are read off verified graphs, whose scatters passed `geometry`.
    let g = dims
        .geometry(x, idx, upd)
        .expect("invariant: the scatter was verified");
    let mut f = OpFactors::default();
    let mut xs: Vec<Vec<usize>> = vec![Vec::new(); x.len()];
    let mut is: Vec<Vec<usize>> = vec![Vec::new(); idx.len()];
    let mut us: Vec<Vec<usize>> = vec![Vec::new(); upd.len()];
    let scatter_kind = if combine == Some(BinaryFn::Add) {
        FactorKind::Reduction
    } else {
        FactorKind::NeedReplication
    };
    for (k, &i) in g.batch_index_dims.iter().enumerate() {
        let u = g.update_scatter_dims[k];
        let fac = match dims
            .scatter_indices_batching_dims
            .iter()
            .position(|&b| b == i)
        {
            Some(p) => {
                let fac = f.add(idx[i], FactorKind::PassThrough);
                xs[dims.input_batching_dims[p]] = vec![fac];
                fac
            }
            None => f.add(idx[i], scatter_kind),
        };
        is[i] = vec![fac];
        us[u] = vec![fac];
    }
    if dims.index_vector_dim < idx.len() {
        is[dims.index_vector_dim] =
            vec![f.add(idx[dims.index_vector_dim], FactorKind::NeedReplication)];
    }
    for d in 0..x.len() {
        if dims.input_batching_dims.contains(&d) {
            continue;
        }
        let window = g
            .window_operand_dims
            .iter()
            .position(|&w| w == d)
            .map(|j| dims.update_window_dims[j]);
        // An indexed dim with a whole window is written only from start 0 (any other start is
        // skipped, on every shard alike): it passes too.
        let whole = g.window_sizes[d] == x[d];
        match window {
            Some(u) if whole => {
                let fac = f.add(x[d], FactorKind::PassThrough);
                xs[d] = vec![fac];
                us[u] = vec![fac];
            }
            Some(u) => {
                xs[d] = vec![f.add(x[d], FactorKind::NeedReplication)];
                us[u] = vec![f.add(upd[u], FactorKind::NeedReplication)];
            }
            None => xs[d] = vec![f.add(x[d], FactorKind::NeedReplication)],
        }
    }
    f.result = xs.clone();
    f.operands = vec![xs, is, us];
    f
}
