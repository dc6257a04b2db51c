//! Gather and scatter instructions: a take along one axis becomes `gather`/`scatter_add`, any
//! other form `general_gather`/`general_scatter` (a variadic scatter: one per operand). Index-parallel forms (an index
//! vector element that is an iota along a batch dim of the indices) get explicit batching dims,
//! as XLA's partitioner treats them, so that their factors pass shardings through.

use crate::graph::ValueId;
use crate::op::{BinaryFn, GatherDims, Op, ScatterDims};
use crate::types::TensorType;

use super::super::attrs;
use super::super::text::{HloType, Instruction};
use super::{Lowered, Lowering};

impl Lowering<'_> {
    /// XLA gather: `take(x, indices, axis)` (`gather`) where it is one, else the general form
    /// (`general_gather`).
    pub(super) fn gather(
        &mut self,
        inst: &Instruction,
        ops: &[ValueId],
        ty: TensorType,
    ) -> Result<ValueId, String> {
        let [x, idx] = ops[..] else {
            return Err(format!(
                "gather needs (operand, start_indices), got {} operands",
                ops.len()
            ));
        };
        let a = |k: &str| inst.attr(k).map_or(Ok(Vec::new()), attrs::dims);
        let dims = GatherDims {
            offset_dims: a("offset_dims")?,
            collapsed_slice_dims: a("collapsed_slice_dims")?,
            start_index_map: a("start_index_map")?,
            index_vector_dim: index_vector_dim(inst, self.graph.ty(idx))?,
            slice_sizes: attrs::ints(inst.attr("slice_sizes").ok_or("expected slice_sizes=")?)?,
            operand_batching_dims: a("operand_batching_dims")?,
            start_indices_batching_dims: a("start_indices_batching_dims")?,
        };
        let (xt, it) = (self.graph.ty(x).clone(), self.graph.ty(idx).clone());
        if let Some(axis) = take_axis(
            &dims.collapsed_slice_dims,
            &dims.start_index_map,
            &xt,
            &it,
            dims.index_vector_dim,
        ) {
            let whole = dims.operand_batching_dims.is_empty()
                && dims.slice_sizes.len() == xt.rank()
                && dims
                    .slice_sizes
                    .iter()
                    .enumerate()
                    .all(|(d, &s)| s == if d == axis { 1 } else { xt.dims()[d] });
            if whole && dims.offset_dims == take_window(axis, &xt, &it, dims.index_vector_dim) {
                let idx = self.index_operand(inst, idx)?;
                return self.push(&self.node_name(inst), Op::Gather { axis }, vec![x, idx], ty);
            }
        }
        let mut dims = dims;
        let mut idx = idx;
        let sig = (
            &dims.start_index_map[..],
            &dims.collapsed_slice_dims[..],
            &dims.start_indices_batching_dims[..],
        );
        if let Some(p) = self.parallel_elements(inst, idx, dims.index_vector_dim, sig, &xt)? {
            p.apply(
                &mut dims.collapsed_slice_dims,
                &mut dims.operand_batching_dims,
                &mut dims.start_indices_batching_dims,
                &mut dims.start_index_map,
            );
            idx = p.indices;
        }
        self.push(
            &self.node_name(inst),
            Op::GeneralGather(dims),
            vec![x, idx],
            ty,
        )
    }

    /// XLA scatter of one operand: the scatter-add adjoint of a take along one axis
    /// (`scatter_add`) where it is one, else the general form (`general_scatter`).
    pub(super) fn scatter(
        &mut self,
        inst: &Instruction,
        ops: &[ValueId],
        ty: TensorType,
    ) -> Result<ValueId, String> {
        let [x, idx, upd] = ops[..] else {
            return Err(format!(
                "a scatter of {} operands is unsupported: only a scatter of one operand (operand, indices, updates) is",
                ops.len()
            ));
        };
        let combine = self.scatter_combiner(inst.attr("to_apply").ok_or("expected to_apply=")?)?;
        let name = self.node_name(inst);
        self.scatter_one(inst, &name, [x, idx, upd], ty, combine)
    }

    /// A variadic scatter (`N` operands, one indices, `N` updates) whose `to_apply` combines
    /// each operand with its own update: `N` scatters sharing the indices, named `NAME.k`.
    pub(super) fn variadic_scatter(
        &mut self,
        inst: &Instruction,
        ops: &[ValueId],
    ) -> Result<Lowered, String> {
        let n = ops.len() / 2;
        let Some(HloType::Tuple(tys)) = &inst.ty else {
            return Err("a scatter of several operands must have a tuple type".into());
        };
        if ops.len() != 2 * n + 1 || n == 0 || tys.len() != n {
            return Err(format!(
                "a scatter has N operands, one indices and N updates; got {} operands for {} results",
                ops.len(),
                tys.len()
            ));
        }
        let combine =
            self.variadic_combiners(inst.attr("to_apply").ok_or("expected to_apply=")?, n)?;
        let base = self.node_name(inst);
        let mut out = Vec::with_capacity(n);
        for k in 0..n {
            let ty = Self::tensor_type(&tys[k])?;
            let name = self.fresh_name(&format!("{base}.{k}"));
            let v = self.scatter_one(
                inst,
                &name,
                [ops[k], ops[n], ops[n + 1 + k]],
                ty,
                combine[k],
            )?;
            out.push(Lowered::Node(v));
        }
        Ok(Lowered::Tuple(out))
    }

    /// What a variadic scatter's `to_apply` (parameters: `N` operand values, then `N` update
    /// values; ROOT a tuple) does to each operand: replace (its element is update parameter
    /// `N + k`) or a binary op of parameters `k` and `N + k`.
    fn variadic_combiners(&self, comp: &str, n: usize) -> Result<Vec<Option<BinaryFn>>, String> {
        let c = self
            .module
            .computation(comp)
            .ok_or_else(|| format!("to_apply computation `{comp}` is not in the module"))?;
        let bad = |m: String| format!("scatter to_apply computation `{comp}`: {m}");
        let param = |name: &str| {
            c.instructions
                .iter()
                .find(|i| i.name == name && i.opcode == "parameter")
                .and_then(|i| i.args.trim().parse::<usize>().ok())
        };
        let root = c.root().ok_or("empty to_apply computation")?;
        if root.opcode != "tuple" || root.operands().len() != n {
            return Err(bad(format!("its ROOT must be a tuple of {n} elements")));
        }
        root.operands()
            .iter()
            .enumerate()
            .map(|(k, e)| {
                if param(e) == Some(n + k) {
                    return Ok(None);
                }
                let inst = c
                    .instructions
                    .iter()
                    .find(|i| &i.name == e)
                    .ok_or_else(|| bad(format!("`{e}` is not defined")))?;
                let args: Vec<Option<usize>> = inst.operands().iter().map(|o| param(o)).collect();
                let f = match inst.opcode.as_str() {
                    "add" => BinaryFn::Add,
                    "multiply" => BinaryFn::Mul,
                    "maximum" => BinaryFn::Max,
                    "minimum" => BinaryFn::Min,
                    o => {
                        return Err(bad(format!(
                            "element {k} is `{o}`, not add/multiply/maximum/minimum or a replace"
                        )))
                    }
                };
                if args == [Some(k), Some(n + k)] || args == [Some(n + k), Some(k)] {
                    Ok(Some(f))
                } else {
                    Err(bad(format!(
                        "element {k} must combine operand parameter {k} with update parameter {}",
                        n + k
                    )))
                }
            })
            .collect()
    }

    /// One scatter node named `name`: `scatter_add` where it is a take's adjoint, else the
    /// general form.
    fn scatter_one(
        &mut self,
        inst: &Instruction,
        name: &str,
        [x, idx, upd]: [ValueId; 3],
        ty: TensorType,
        combine: Option<BinaryFn>,
    ) -> Result<ValueId, String> {
        let a = |k: &str| inst.attr(k).map_or(Ok(Vec::new()), attrs::dims);
        let dims = ScatterDims {
            update_window_dims: a("update_window_dims")?,
            inserted_window_dims: a("inserted_window_dims")?,
            scatter_dims_to_operand_dims: a("scatter_dims_to_operand_dims")?,
            index_vector_dim: index_vector_dim(inst, self.graph.ty(idx))?,
            input_batching_dims: a("input_batching_dims")?,
            scatter_indices_batching_dims: a("scatter_indices_batching_dims")?,
        };
        // Always the general form, even where the scatter is a take's adjoint: XLA skips an
        // update whose window does not fit, where `scatter_add` would clamp it into range.
        let xt = self.graph.ty(x).clone();
        let mut dims = dims;
        let mut idx = idx;
        let sig = (
            &dims.scatter_dims_to_operand_dims[..],
            &dims.inserted_window_dims[..],
            &dims.scatter_indices_batching_dims[..],
        );
        if let Some(p) = self.parallel_elements(inst, idx, dims.index_vector_dim, sig, &xt)? {
            p.apply(
                &mut dims.inserted_window_dims,
                &mut dims.input_batching_dims,
                &mut dims.scatter_indices_batching_dims,
                &mut dims.scatter_dims_to_operand_dims,
            );
            idx = p.indices;
        }
        self.push(
            name,
            Op::GeneralScatter { dims, combine },
            vec![x, idx, upd],
            ty,
        )
    }

    /// What a scatter's `to_apply` does with (operand value, update value): its ROOT is the
    /// second parameter (replace: `None`) or add/multiply/maximum/minimum of both parameters (or
    /// or/and on pred).
    fn scatter_combiner(&self, comp: &str) -> Result<Option<BinaryFn>, String> {
        let c = self
            .module
            .computation(comp)
            .ok_or_else(|| format!("to_apply computation `{comp}` is not in the module"))?;
        let params: Vec<&Instruction> = c
            .instructions
            .iter()
            .filter(|i| i.opcode == "parameter")
            .collect();
        let root = c.root().ok_or("empty to_apply computation")?;
        let bad = || {
            format!(
                "scatter to_apply computation `{comp}` is not a replace (ROOT the second parameter) or a simple add/multiply/maximum/minimum of its two parameters"
            )
        };
        if params.len() != 2 {
            return Err(bad());
        }
        if root.opcode == "parameter" {
            return match root.args.trim() {
                "1" => Ok(None),
                _ => Err(bad()),
            };
        }
        let ops = root.operands();
        let simple = c.instructions.len() == 3
            && ops.len() == 2
            && ops.iter().all(|o| params.iter().any(|p| &p.name == o));
        let is_pred = matches!(&root.ty, Some(HloType::Array { dtype, .. }) if dtype == "pred");
        let f = match (root.opcode.as_str(), is_pred) {
            ("add", false) => BinaryFn::Add,
            ("multiply", false) => BinaryFn::Mul,
            ("maximum", _) | ("or", true) => BinaryFn::Max,
            ("minimum", _) | ("and", true) => BinaryFn::Min,
            _ => return Err(bad()),
        };
        if simple {
            Ok(Some(f))
        } else {
            Err(bad())
        }
    }

    /// Index operand with the index vector dim gone: implicit (`index_vector_dim` = rank), or a
    /// trailing dim of size 1, removed by a reshape node named after the instruction.
    fn index_operand(&mut self, inst: &Instruction, idx: ValueId) -> Result<ValueId, String> {
        let it = self.graph.ty(idx).clone();
        let ivd: usize = inst.attr("index_vector_dim").map_or(Ok(it.rank()), |v| {
            v.trim()
                .parse()
                .map_err(|_| "index_vector_dim must be an integer")
        })?;
        if ivd == it.rank() {
            return Ok(idx);
        }
        if ivd + 1 != it.rank() || it.dims()[ivd] != 1 {
            return Err("the index vector dim must be implicit or a trailing dim of size 1".into());
        }
        let name = self.fresh_name(&format!("{}.indices", self.node_name(inst)));
        let t = TensorType::new(it.dtype, it.dims()[..ivd].to_vec());
        self.push(&name, Op::Reshape, vec![idx], t)
    }
}

/// The `index_vector_dim` of a gather or scatter (default: the indices' rank, implicit).
fn index_vector_dim(inst: &Instruction, indices: &TensorType) -> Result<usize, String> {
    inst.attr("index_vector_dim")
        .map_or(Ok(indices.rank()), |v| {
            v.trim()
                .parse()
                .map_err(|_| format!("index_vector_dim must be an integer, got `{v}`"))
        })
}

/// The axis of a take (`collapsed`/`inserted` = index map = `{axis}`, the index vector implicit
/// or a trailing dim of size 1), or `None` when the dims are not those of a take.
fn take_axis(
    dropped: &[usize],
    map: &[usize],
    x: &TensorType,
    idx: &TensorType,
    ivd: usize,
) -> Option<usize> {
    let axis = match (dropped, map) {
        ([c], [m]) if c == m && *c < x.rank() => *c,
        _ => return None,
    };
    let trailing_one = ivd + 1 == idx.rank() && idx.dims()[ivd] == 1;
    (ivd == idx.rank() || trailing_one).then_some(axis)
}

/// The indices' dims of a take, without the index vector dim.
fn take_batch(idx: &TensorType, ivd: usize) -> Vec<u64> {
    idx.dims()[..ivd.min(idx.rank())].to_vec()
}

/// The offset (window) dims a take along `axis` has: the result's dims around the index dims.
fn take_window(axis: usize, x: &TensorType, idx: &TensorType, ivd: usize) -> Vec<usize> {
    let b = take_batch(idx, ivd).len();
    (0..axis).chain(axis + b..x.rank() - 1 + b).collect()
}

/// Index vector elements that are batching dims in disguise, as XLA's partitioner finds them
/// (its "index-parallel" gathers and scatters): with `(k, d, j)` for each, the graph change.
struct Parallel {
    /// `(element k, operand dim d, indices dim j)`: element `k` is an iota along indices dim
    /// `j` and starts operand dim `d`, which is collapsed (inserted) and as long as dim `j`.
    found: Vec<(usize, usize, usize)>,
    /// The other index vector elements (contiguous), which stay indices.
    rest: std::ops::Range<usize>,
    /// The indices with only `rest` left in the index vector dim.
    indices: ValueId,
}

impl Parallel {
    /// Moves the found dims from `dropped` (collapsed or inserted) to the batching dims and
    /// keeps the rest of `map`.
    fn apply(
        &self,
        dropped: &mut Vec<usize>,
        operand_batching: &mut Vec<usize>,
        index_batching: &mut Vec<usize>,
        map: &mut Vec<usize>,
    ) {
        dropped.retain(|d| !self.found.iter().any(|f| f.1 == *d));
        let mut pairs: Vec<(usize, usize)> = operand_batching
            .iter()
            .copied()
            .zip(index_batching.iter().copied())
            .chain(self.found.iter().map(|&(_, d, j)| (d, j)))
            .collect();
        pairs.sort_unstable();
        (*operand_batching, *index_batching) = pairs.into_iter().unzip();
        *map = map[self.rest.clone()].to_vec();
    }
}

impl Lowering<'_> {
    /// Finds index vector elements that are iotas along a batch dim of the indices (each one an
    /// `iota` piece of size 1 of a `concatenate` along the index vector dim, or the whole
    /// indices): gathering or scattering at `iota` along dim `j` of an operand dim `d` that is
    /// collapsed and as long as dim `j` is exactly a batching dim pairing `d` with `j`. Slices the
    /// others out of the indices (a node named after the instruction); `None` when there are no
    /// such elements or the others are not contiguous.
    fn parallel_elements(
        &mut self,
        inst: &Instruction,
        idx: ValueId,
        ivd: usize,
        (map, dropped, taken): (&[usize], &[usize], &[usize]),
        operand: &TensorType,
    ) -> Result<Option<Parallel>, String> {
        let it = self.graph.ty(idx).clone();
        if ivd >= it.rank() {
            return Ok(None);
        }
        let iota_along = |v: ValueId| match self.graph.node(v).op {
            Op::Iota { dim } if self.graph.ty(v).dims().get(ivd) == Some(&1) => Some(dim),
            _ => None,
        };
        let elements: Vec<Option<usize>> = match &self.graph.node(idx).op {
            Op::Concatenate { dim } if *dim == ivd => self
                .graph
                .node(idx)
                .operands
                .iter()
                .flat_map(|&p| {
                    let n = self.graph.ty(p).dims()[ivd] as usize;
                    vec![iota_along(p); n]
                })
                .collect(),
            Op::Iota { .. } => vec![iota_along(idx)],
            _ => return Ok(None),
        };
        let mut found: Vec<(usize, usize, usize)> = Vec::new();
        for (k, e) in elements.iter().enumerate() {
            let (Some(j), Some(&d)) = (e, map.get(k)) else {
                continue;
            };
            let fits = *j != ivd
                && dropped.contains(&d)
                && operand.dims().get(d) == it.dims().get(*j)
                && !taken.contains(j)
                && !found.iter().any(|f| f.2 == *j);
            if fits {
                found.push((k, d, *j));
            }
        }
        let rest: Vec<usize> = (0..map.len())
            .filter(|k| !found.iter().any(|f| f.0 == *k))
            .collect();
        let rest = match (rest.first(), rest.last()) {
            (Some(&a), Some(&b)) if b - a + 1 == rest.len() => a..b + 1,
            (None, None) => 0..0,
            _ => return Ok(None),
        };
        if found.is_empty() {
            return Ok(None);
        }
        let mut start = vec![0; it.rank()];
        let mut limit = it.dims().to_vec();
        start[ivd] = rest.start as u64;
        limit[ivd] = rest.end as u64;
        let name = self.fresh_name(&format!("{}.indices", self.node_name(inst)));
        let mut dims = it.dims().to_vec();
        dims[ivd] = rest.len() as u64;
        let slice = Op::Slice {
            start,
            limit,
            stride: vec![1; it.rank()],
        };
        let indices = self.push(&name, slice, vec![idx], TensorType::new(it.dtype, dims))?;
        Ok(Some(Parallel {
            found,
            rest,
            indices,
        }))
    }
}
