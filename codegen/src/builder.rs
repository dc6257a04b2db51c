//! The local program under construction: unique names, cached device coordinates and the small
//! index arithmetic (shard offsets, masks, padding) that partitioned ops are built from.

use std::collections::{HashMap, HashSet};

use shardc_ir::{BinaryFn, CompareDir, DType, Graph, Literal, Mesh, Op, Role, TensorType, ValueId};

use crate::error::{CodegenError, Result};

/// Builds the per-device program. Every node added while lowering original node `origin` is
/// named after it, so a person reading the dump sees which op caused each collective.
pub(crate) struct LocalBuilder {
    pub g: Graph,
    pub mesh: Mesh,
    names: HashSet<String>,
    /// The original node being lowered (for names and error messages).
    pub origin: String,
    axis_index: HashMap<Vec<String>, ValueId>,
    i32_consts: HashMap<i64, ValueId>,
}

impl LocalBuilder {
    pub fn new(name: &str, mesh: &Mesh) -> Self {
        let mut g = Graph::new(name);
        g.mesh = Some(mesh.clone());
        LocalBuilder {
            g,
            mesh: mesh.clone(),
            names: HashSet::new(),
            origin: String::new(),
            axis_index: HashMap::new(),
            i32_consts: HashMap::new(),
        }
    }

    fn unique(&mut self, base: &str) -> String {
        if self.names.insert(base.to_string()) {
            return base.to_string();
        }
        let mut i = 1usize;
        loop {
            let n = format!("{base}.{i}");
            if self.names.insert(n.clone()) {
                return n;
            }
            i += 1;
        }
    }

    /// Adds a node named exactly `name` (made unique if taken).
    pub fn push_named(
        &mut self,
        name: &str,
        op: Op,
        operands: Vec<ValueId>,
        declared: Option<TensorType>,
    ) -> Result<ValueId> {
        let name = self.unique(name);
        self.g
            .push(name, op, operands, declared)
            .map_err(|source| CodegenError::Build {
                node: self.origin.clone(),
                source,
            })
    }

    /// Adds a helper node named `<origin>.<suffix>`.
    pub fn push(
        &mut self,
        suffix: &str,
        op: Op,
        operands: Vec<ValueId>,
        declared: Option<TensorType>,
    ) -> Result<ValueId> {
        let base = if self.origin.is_empty() {
            suffix.to_string()
        } else {
            format!("{}.{suffix}", self.origin)
        };
        self.push_named(&base, op, operands, declared)
    }

    pub fn ty(&self, v: ValueId) -> &TensorType {
        self.g.ty(v)
    }

    /// Product of the sizes of `axes` (each checked to exist by the caller's validation).
    pub fn axes_size(&self, axes: &[String]) -> u64 {
        axes.iter()
            .map(|a| self.mesh.axis_size(a).unwrap_or(1))
            .product()
    }

    /// This device's linear coordinate along `axes` (one node per distinct axis list).
    pub fn axis_index(&mut self, axes: &[String]) -> Result<ValueId> {
        if let Some(&v) = self.axis_index.get(axes) {
            return Ok(v);
        }
        let name = format!("axis_index.{}", axes.join("_"));
        let v = self.push_named(
            &name,
            Op::AxisIndex {
                axes: axes.to_vec(),
            },
            vec![],
            Some(TensorType::scalar(DType::I32)),
        )?;
        self.axis_index.insert(axes.to_vec(), v);
        Ok(v)
    }

    /// An i32 scalar constant (one node per value).
    pub fn i32_const(&mut self, value: i64) -> Result<ValueId> {
        if let Some(&v) = self.i32_consts.get(&value) {
            return Ok(v);
        }
        let v = self.push_named(
            &format!("c{value}"),
            Op::Constant {
                value: Literal::Splat(value as f64),
            },
            vec![],
            Some(TensorType::scalar(DType::I32)),
        )?;
        self.i32_consts.insert(value, v);
        Ok(v)
    }

    /// `axis_index(axes) * local`: where this device's shard starts in a dim split over `axes`
    /// into pieces of `local` elements (GSPMD's partition-id times the shard size).
    pub fn shard_offset(&mut self, axes: &[String], local: u64) -> Result<ValueId> {
        if axes.is_empty() || local == 0 {
            return self.i32_const(0);
        }
        let idx = self.axis_index(axes)?;
        if local == 1 {
            return Ok(idx);
        }
        let l = self.i32_const(to_i32(local)?)?;
        self.push(
            "offset",
            Op::Binary {
                func: BinaryFn::Mul,
            },
            vec![idx, l],
            None,
        )
    }

    /// A constant of `ty` with every element `value`.
    pub fn splat(&mut self, suffix: &str, ty: TensorType, value: f64) -> Result<ValueId> {
        self.push(
            suffix,
            Op::Constant {
                value: Literal::Splat(value),
            },
            vec![],
            Some(ty),
        )
    }

    /// Pads `x` at the high end of each dim up to `dims` with zeros (no node if already there).
    pub fn pad_high(&mut self, x: ValueId, dims: &[u64]) -> Result<ValueId> {
        let cur = self.ty(x).dims().to_vec();
        if cur == dims {
            return Ok(x);
        }
        let high = cur
            .iter()
            .zip(dims)
            .map(|(&c, &t)| t as i64 - c as i64)
            .collect();
        self.push(
            "pad",
            Op::Pad {
                low: vec![0; cur.len()],
                high,
                interior: vec![0; cur.len()],
                value: 0.0,
            },
            vec![x],
            None,
        )
    }

    /// The leading `dims` of `x` (no node if already that shape): drops the padding of uneven
    /// shards after a gather.
    pub fn slice_prefix(&mut self, x: ValueId, dims: &[u64]) -> Result<ValueId> {
        let cur = self.ty(x).dims().to_vec();
        if cur == dims {
            return Ok(x);
        }
        self.push(
            "unpad",
            Op::Slice {
                start: vec![0; dims.len()],
                limit: dims.to_vec(),
                stride: vec![1; dims.len()],
            },
            vec![x],
            None,
        )
    }

    /// A dynamic slice of `sizes` starting at `starts` (one i32 scalar per dim).
    pub fn dynamic_slice(
        &mut self,
        x: ValueId,
        starts: Vec<ValueId>,
        sizes: Vec<u64>,
    ) -> Result<ValueId> {
        let mut ops = vec![x];
        ops.extend(starts);
        self.push("shard", Op::DynamicSlice { sizes }, ops, None)
    }

    /// Replaces the padding of an uneven shard of dim `d` by `identity`: elements whose global
    /// index `offset + i` is at or past `global` (padding must not pollute a reduction).
    pub fn mask_padding(
        &mut self,
        x: ValueId,
        d: usize,
        axes: &[String],
        global: u64,
        identity: f64,
    ) -> Result<ValueId> {
        let ty = self.ty(x).clone();
        let local = ty.dims()[d];
        let idx_ty = ty.with_dtype(DType::I32);
        let iota = self.push("iota", Op::Iota { dim: d }, vec![], Some(idx_ty.clone()))?;
        let off = self.shard_offset(axes, local)?;
        let off = self.push(
            "offset_b",
            Op::Broadcast { dims: vec![] },
            vec![off],
            Some(idx_ty.clone()),
        )?;
        let pos = self.push(
            "pos",
            Op::Binary {
                func: BinaryFn::Add,
            },
            vec![iota, off],
            None,
        )?;
        let limit = self.splat("limit", idx_ty, global as f64)?;
        let valid = self.push(
            "valid",
            Op::Compare {
                dir: CompareDir::Lt,
            },
            vec![pos, limit],
            None,
        )?;
        let fill = self.splat("identity", ty, identity)?;
        self.push("masked", Op::Select, vec![valid, x, fill], None)
    }

    /// Marks an input node's role.
    pub fn set_role(&mut self, v: ValueId, role: Role) {
        self.g.nodes[v.index()].role = role;
    }
}

/// A shard size or offset as i32 (the dtype of `axis_index` arithmetic).
pub(crate) fn to_i32(v: u64) -> Result<i64> {
    i32::try_from(v).map(i64::from).map_err(|_| {
        CodegenError::Data(format!("offset {v} does not fit the i32 index arithmetic"))
    })
}

/// The identity of a reduction for `dtype`: what padding must hold so it changes nothing.
/// Finite extremes rather than infinities keep the program JSON-serializable.
pub(crate) fn reduce_identity(func: shardc_ir::ReduceFn, dtype: DType) -> f64 {
    use shardc_ir::ReduceFn;
    let (lo, hi) = match dtype {
        DType::F64 => (f64::MIN, f64::MAX),
        DType::I32 => (i32::MIN as f64, i32::MAX as f64),
        DType::I64 => (i64::MIN as f64, i64::MAX as f64),
        DType::Bool => (0.0, 1.0),
        // f32, bf16 and f16 (bf16/f16 saturate to their own largest finite value).
        _ => (f32::MIN as f64, f32::MAX as f64),
    };
    match func {
        ReduceFn::Sum => 0.0,
        ReduceFn::Max => lo,
        ReduceFn::Min => hi,
    }
}
