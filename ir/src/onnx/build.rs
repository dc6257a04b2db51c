//! The importer's state: ONNX value names to graph values or import-time constants, node naming,
//! and the helpers every operator's lowering uses (broadcasting, constants, reshapes).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::rc::Rc;

use super::attrs::{node_label, Attrs};
use super::host::Host;
use super::proto::{FunctionProto, GraphProto, NodeProto};
use super::tensor::{decode, value_type};
use super::{ExternalData, OnnxOptions, ParamValue};
use crate::dtype::DType;
use crate::error::{IrError, Result};
use crate::graph::{Graph, Role, ValueId};
use crate::op::{BinaryFn, Literal, Op};
use crate::types::TensorType;

/// A value while importing: a graph value, or a tensor known at import time.
#[derive(Clone, Debug)]
pub(crate) enum Val {
    Node(ValueId),
    Host(Rc<Host>),
}

impl Val {
    pub(crate) fn host(h: Host) -> Val {
        Val::Host(Rc::new(h))
    }
}

/// The importer.
pub(crate) struct Ctx {
    pub(crate) g: Graph,
    vals: HashMap<String, Val>,
    used: HashSet<String>,
    /// Constant nodes already made for import-time values, by the value's address.
    materialized: HashMap<*const Host, ValueId>,
    /// The prefix of the names of nodes made for the ONNX node being lowered.
    base: String,
}

/// Where an ONNX value name becomes a node name: `/model/layers.0/mlp/MatMul_output_0` (the
/// TorchScript exporter's scopes) reads `model.layers.0.mlp.MatMul_output_0`, so that scopes and
/// layer numbers read as shardc's own names do.
fn sanitize(name: &str) -> String {
    let s = name.trim_start_matches('/').replace('/', ".");
    if s.is_empty() {
        "value".into()
    } else {
        s
    }
}

impl Ctx {
    fn new(name: &str) -> Self {
        Ctx {
            g: Graph::new(name),
            vals: HashMap::new(),
            used: HashSet::new(),
            materialized: HashMap::new(),
            base: "import".into(),
        }
    }

    /// A name not used yet, `want` or `want.N`.
    fn unique(&mut self, want: &str) -> String {
        let mut name = want.to_string();
        let mut k = 1;
        while self.used.contains(&name) {
            name = format!("{want}.{k}");
            k += 1;
        }
        self.used.insert(name.clone());
        name
    }

    /// Appends a node named after the ONNX node being lowered (`BASE.hint`).
    pub(crate) fn push(
        &mut self,
        hint: &str,
        op: Op,
        operands: Vec<ValueId>,
        ty: Option<TensorType>,
    ) -> Result<ValueId> {
        let name = self.unique(&format!("{}.{hint}", self.base));
        self.g.push(name, op, operands, ty)
    }

    fn push_named(
        &mut self,
        name: &str,
        op: Op,
        operands: Vec<ValueId>,
        ty: Option<TensorType>,
    ) -> Result<ValueId> {
        let name = self.unique(name);
        self.g.push(name, op, operands, ty)
    }

    pub(crate) fn ty(&self, v: &Val) -> TensorType {
        match v {
            Val::Node(id) => self.g.ty(*id).clone(),
            Val::Host(h) => h.ty(),
        }
    }

    /// The graph value of `v`; an import-time value becomes a constant node (once).
    pub(crate) fn node(&mut self, v: &Val) -> Result<ValueId> {
        match v {
            Val::Node(id) => Ok(*id),
            Val::Host(h) => {
                let key = Rc::as_ptr(h);
                if let Some(&id) = self.materialized.get(&key) {
                    return Ok(id);
                }
                let first = h.data.first().copied().unwrap_or(0.0);
                let value = if h.data.iter().all(|&x| x == first) && !h.data.is_empty() {
                    Literal::Splat(first)
                } else {
                    Literal::Dense(h.data.clone())
                };
                let id = self.push("const", Op::Constant { value }, vec![], Some(h.ty()))?;
                self.materialized.insert(key, id);
                Ok(id)
            }
        }
    }

    /// A constant of `dtype` and `dims`, every element `value`.
    pub(crate) fn splat(&mut self, dtype: DType, dims: &[u64], value: f64) -> Result<ValueId> {
        self.push(
            "const",
            Op::Constant {
                value: Literal::Splat(value),
            },
            vec![],
            Some(TensorType::new(dtype, dims.to_vec())),
        )
    }

    /// `v` broadcast to `dims` by numpy rules (trailing dims aligned).
    pub(crate) fn broadcast_to(&mut self, v: ValueId, dims: &[u64]) -> Result<ValueId> {
        let ty = self.g.ty(v).clone();
        if ty.dims() == dims {
            return Ok(v);
        }
        let off = dims.len().checked_sub(ty.rank()).ok_or_else(|| {
            IrError::node(
                &self.base,
                "broadcast",
                format!("cannot broadcast {ty} to rank {}", dims.len()),
            )
        })?;
        let bdims: Vec<usize> = (off..dims.len()).collect();
        self.push(
            "broadcast",
            Op::Broadcast { dims: bdims },
            vec![v],
            Some(TensorType::new(ty.dtype, dims.to_vec())),
        )
    }

    /// `a` and `b` broadcast to their common shape.
    pub(crate) fn broadcast_pair(&mut self, a: ValueId, b: ValueId) -> Result<(ValueId, ValueId)> {
        let (ta, tb) = (self.g.ty(a).clone(), self.g.ty(b).clone());
        let dims = super::host::broadcast_shape(ta.dims(), tb.dims()).ok_or_else(|| {
            IrError::node(
                &self.base,
                "broadcast",
                format!("{ta} and {tb} do not broadcast"),
            )
        })?;
        Ok((self.broadcast_to(a, &dims)?, self.broadcast_to(b, &dims)?))
    }

    /// An elementwise binary op with numpy broadcasting.
    pub(crate) fn binary(&mut self, func: BinaryFn, a: ValueId, b: ValueId) -> Result<ValueId> {
        let (a, b) = self.broadcast_pair(a, b)?;
        self.push(func.name(), Op::Binary { func }, vec![a, b], None)
    }

    /// `a func c` for a scalar constant `c` of `a`'s dtype.
    pub(crate) fn binary_scalar(&mut self, func: BinaryFn, a: ValueId, c: f64) -> Result<ValueId> {
        let ty = self.g.ty(a).clone();
        let k = self.splat(ty.dtype, ty.dims(), c)?;
        self.push(func.name(), Op::Binary { func }, vec![a, k], None)
    }

    pub(crate) fn unary(&mut self, func: crate::op::UnaryFn, a: ValueId) -> Result<ValueId> {
        self.push(func.name(), Op::Unary { func }, vec![a], None)
    }

    pub(crate) fn reshape(&mut self, v: ValueId, dims: &[u64]) -> Result<ValueId> {
        let ty = self.g.ty(v).clone();
        if ty.dims() == dims {
            return Ok(v);
        }
        self.push(
            "reshape",
            Op::Reshape,
            vec![v],
            Some(TensorType::new(ty.dtype, dims.to_vec())),
        )
    }

    pub(crate) fn convert(&mut self, v: ValueId, dtype: DType) -> Result<ValueId> {
        let ty = self.g.ty(v).clone();
        if ty.dtype == dtype {
            return Ok(v);
        }
        self.push("convert", Op::Convert, vec![v], Some(ty.with_dtype(dtype)))
    }

    /// Reduces `dims` of `v` with `func`, keeping them as size-1 dims when `keep`.
    pub(crate) fn reduce(
        &mut self,
        func: crate::op::ReduceFn,
        v: ValueId,
        dims: &[usize],
        keep: bool,
    ) -> Result<ValueId> {
        let ty = self.g.ty(v).clone();
        let mut dims = dims.to_vec();
        dims.sort_unstable();
        dims.dedup();
        let r = self.push(
            "reduce",
            Op::Reduce {
                func,
                dims: dims.clone(),
            },
            vec![v],
            None,
        )?;
        if !keep {
            return Ok(r);
        }
        let kept: Vec<u64> = (0..ty.rank())
            .map(|d| if dims.contains(&d) { 1 } else { ty.dims()[d] })
            .collect();
        self.reshape(r, &kept)
    }
}

/// An ONNX node's inputs, with what the lowerings need to read them.
pub(crate) struct Inputs<'a> {
    pub vals: Vec<Option<Val>>,
    pub attrs: Attrs<'a>,
}

impl Inputs<'_> {
    /// Input `i`, which the operator requires.
    pub(crate) fn get(&self, i: usize) -> Result<&Val> {
        self.vals
            .get(i)
            .and_then(Option::as_ref)
            .ok_or_else(|| self.attrs.err(format!("input {i} is missing")))
    }

    pub(crate) fn opt(&self, i: usize) -> Option<&Val> {
        self.vals.get(i).and_then(Option::as_ref)
    }

    /// Input `i` as an import-time tensor: shapes, axes and sizes must be known when importing.
    pub(crate) fn host(&self, i: usize) -> Result<&Host> {
        match self.get(i)? {
            Val::Host(h) => Ok(h),
            Val::Node(_) => Err(self.attrs.err(format!(
                "input {i} must be known at import time (a constant, or computed from shapes only); \
                 it depends on the model's inputs"
            ))),
        }
    }

    pub(crate) fn host_ints(&self, i: usize) -> Result<Vec<i64>> {
        Ok(self.host(i)?.as_i64s())
    }

    /// Integers given by input `i` (opset 13+) or, in older models, attribute `attr`.
    pub(crate) fn ints_input_or_attr(&self, i: usize, attr: &str) -> Result<Option<Vec<i64>>> {
        if self.opt(i).is_some() {
            return Ok(Some(self.host_ints(i)?));
        }
        Ok(self.attrs.ints(attr))
    }

    /// All present inputs are import-time values.
    pub(crate) fn all_host(&self) -> bool {
        self.vals
            .iter()
            .flatten()
            .all(|v| matches!(v, Val::Host(_)))
    }
}

/// `axis` of a rank-`rank` tensor, negative counting from the end, checked.
pub(crate) fn norm_axis(attrs: &Attrs, axis: i64, rank: usize) -> Result<usize> {
    let r = rank as i64;
    let a = if axis < 0 { axis + r } else { axis };
    if a < 0 || a >= r.max(1) {
        return Err(attrs.err(format!("axis {axis} is out of range for rank {rank}")));
    }
    Ok(a as usize)
}

/// Operator types the importer lowers (the default domain; `com.microsoft` for ORT's fused
/// normalizations). Kept sorted.
pub const SUPPORTED_OPS: &[&str] = &[
    "Abs",
    "Add",
    "And",
    "AveragePool",
    "BatchNormalization",
    "Cast",
    "CastLike",
    "Ceil",
    "Clip",
    "Concat",
    "Constant",
    "ConstantOfShape",
    "Conv",
    "Cos",
    "CumSum",
    "Div",
    "Dropout",
    "Equal",
    "Erf",
    "Exp",
    "Expand",
    "Flatten",
    "Floor",
    "Gather",
    "GatherElements",
    "Gelu",
    "Gemm",
    "GlobalAveragePool",
    "Greater",
    "GreaterOrEqual",
    "HardSigmoid",
    "HardSwish",
    "Identity",
    "IsInf",
    "IsNaN",
    "LayerNormalization",
    "LeakyRelu",
    "Less",
    "LessOrEqual",
    "Log",
    "LogSoftmax",
    "MatMul",
    "Max",
    "MaxPool",
    "Mean",
    "Min",
    "Mod",
    "Mul",
    "Neg",
    "Not",
    "Or",
    "Pow",
    "Range",
    "Reciprocal",
    "ReduceL2",
    "ReduceMax",
    "ReduceMean",
    "ReduceMin",
    "ReduceProd",
    "ReduceSum",
    "ReduceSumSquare",
    "Relu",
    "Reshape",
    "RMSNormalization",
    "Shape",
    "Sigmoid",
    "Sign",
    "SimplifiedLayerNormalization",
    "Sin",
    "Size",
    "SkipSimplifiedLayerNormalization",
    "Slice",
    "Softmax",
    "Softplus",
    "Split",
    "Sqrt",
    "Squeeze",
    "Sub",
    "Sum",
    "Tanh",
    "Tile",
    "Transpose",
    "Trilu",
    "Unsqueeze",
    "Where",
    "Xor",
];

/// Imports a graph: inputs, initializers, then every node in order.
pub(crate) fn import_graph(
    gp: &GraphProto,
    functions: &[FunctionProto],
    opset: i64,
    ext: &ExternalData,
    opts: &OnnxOptions,
) -> Result<(Graph, Vec<ParamValue>)> {
    check_supported(gp, functions)?;
    let _ = opset;
    let mut cx = Ctx::new(gp.name());
    let mut params = Vec::new();
    let init_names: HashSet<&str> = gp.initializer.iter().map(|t| t.name()).collect();
    for i in &gp.input {
        if init_names.contains(i.name()) {
            continue;
        }
        let ty = value_type(i.name(), i.r#type.as_ref(), &opts.dims)?;
        let id = cx.push_named(i.name(), Op::Input { init: None }, vec![], Some(ty))?;
        cx.g.nodes[id.index()].role = Role::Input;
        cx.vals.insert(i.name().to_string(), Val::Node(id));
    }
    let transposed = super::names::transposed_parameters(gp);
    for t in &gp.initializer {
        let (dtype, dims, data) = decode(t, ext)?;
        let numel: u64 = dims.iter().product();
        let val = if dtype.is_float() && numel > 1 {
            let source = transposed.get(t.name()).filter(|_| dims.len() == 2);
            let (name, dims, data) = match source {
                // The PyTorch parameter, in PyTorch's layout; the folded initializer is its
                // transpose (see `names.rs`).
                Some(src) => (
                    src.as_str(),
                    vec![dims[1], dims[0]],
                    data.transpose2(dims[0], dims[1]),
                ),
                None => (t.name(), dims, data),
            };
            let ty = TensorType::new(dtype, dims);
            let mut id = cx.push_named(name, Op::Input { init: None }, vec![], Some(ty.clone()))?;
            cx.g.nodes[id.index()].role = Role::Parameter;
            params.push(ParamValue {
                name: cx.g.nodes[id.index()].name.clone(),
                ty,
                data,
            });
            if source.is_some() {
                let op = Op::Transpose { perm: vec![1, 0] };
                id = cx.push_named(t.name(), op, vec![id], None)?;
            }
            Val::Node(id)
        } else {
            Val::host(Host::new(dtype, dims, data.to_f64_vec()))
        };
        cx.vals.insert(t.name().to_string(), val);
    }
    for node in &gp.node {
        lower_node(&mut cx, node, functions)?;
    }
    for o in &gp.output {
        let v = cx.vals.get(o.name()).cloned().ok_or_else(|| {
            IrError::Format(format!(
                "graph output `{}` is not computed by any node",
                o.name()
            ))
        })?;
        let id = cx.node(&v)?;
        // Outputs carry the model's output names exactly (the keys of `--outputs out.npz`).
        let id = if cx.g.nodes[id.index()].name == o.name() {
            id
        } else if cx.g.nodes[id.index()].role == Role::Activation
            && !cx.g.outputs.contains(&id)
            && !cx.used.contains(o.name())
        {
            let old = std::mem::replace(&mut cx.g.nodes[id.index()].name, o.name().to_string());
            cx.used.remove(&old);
            cx.used.insert(o.name().to_string());
            id
        } else {
            cx.push_named(o.name(), Op::Copy, vec![id], None)?
        };
        cx.g.outputs.push(id);
    }
    Ok((cx.g, params))
}

/// Every operator of the graph the importer cannot lower, with counts, as one error.
fn check_supported(gp: &GraphProto, functions: &[FunctionProto]) -> Result<()> {
    let mut missing: BTreeMap<String, usize> = BTreeMap::new();
    let mut nodes: Vec<&NodeProto> = gp.node.iter().collect();
    // The bodies of the model-local functions that are called count too (once per call).
    let mut k = 0;
    while k < nodes.len() {
        if let Some(f) = find_function(functions, nodes[k]) {
            if nodes.len() < 1_000_000 {
                nodes.extend(f.node.iter());
            }
        }
        k += 1;
    }
    for n in nodes {
        if find_function(functions, n).is_some() {
            continue;
        }
        let known = SUPPORTED_OPS.contains(&n.op_type());
        let domain_ok = matches!(n.domain(), "" | "ai.onnx" | "com.microsoft");
        if !known || !domain_ok {
            let key = match n.domain() {
                "" | "ai.onnx" => n.op_type().to_string(),
                d => format!("{d}.{}", n.op_type()),
            };
            *missing.entry(key).or_default() += 1;
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = missing
        .iter()
        .map(|(k, n)| format!("{k} ({n} node{})", if *n == 1 { "" } else { "s" }))
        .collect();
    Err(IrError::Format(format!(
        "the model uses {} operator{} the ONNX importer does not support: {}",
        missing.len(),
        if missing.len() == 1 { "" } else { "s" },
        list.join(", ")
    )))
}

fn find_function<'a>(functions: &'a [FunctionProto], n: &NodeProto) -> Option<&'a FunctionProto> {
    functions
        .iter()
        .find(|f| f.name() == n.op_type() && f.domain() == n.domain())
}

/// Lowers one node (or inlines a model-local function) and binds its outputs.
fn lower_node(cx: &mut Ctx, node: &NodeProto, functions: &[FunctionProto]) -> Result<()> {
    let mut vals = Vec::with_capacity(node.input.len());
    for name in &node.input {
        if name.is_empty() {
            vals.push(None);
            continue;
        }
        let v = cx.vals.get(name).cloned().ok_or_else(|| {
            IrError::node(
                node_label(node),
                node.op_type(),
                format!("input `{name}` is not defined before this node"),
            )
        })?;
        vals.push(Some(v));
    }
    if let Some(f) = find_function(functions, node) {
        return inline_function(cx, node, f, vals, functions);
    }
    cx.base = sanitize(node.output.first().map_or(node.op_type(), String::as_str));
    let first_new = cx.g.len();
    let inputs = Inputs {
        vals,
        attrs: Attrs::new(node),
    };
    let outs = super::fold::lower(cx, node.op_type(), &inputs)?;
    let wanted = node.output.iter().filter(|o| !o.is_empty()).count();
    if outs.len() < wanted {
        return Err(inputs.attrs.err(format!(
            "gives {} outputs, the model uses {wanted}",
            outs.len()
        )));
    }
    for (name, v) in node.output.iter().zip(outs) {
        if name.is_empty() {
            continue;
        }
        if let Val::Node(id) = v {
            // The node made last for an output takes the output's own name.
            let n = &cx.g.nodes[id.index()];
            if id.index() >= first_new && n.name.starts_with(&cx.base) && n.name != sanitize(name) {
                let want = sanitize(name);
                if !cx.used.contains(&want) {
                    let old = std::mem::replace(&mut cx.g.nodes[id.index()].name, want.clone());
                    cx.used.remove(&old);
                    cx.used.insert(want);
                }
            }
        }
        cx.vals.insert(name.clone(), v);
    }
    Ok(())
}

/// Inlines a call of a model-local function: its body's values live under the call's names.
fn inline_function(
    cx: &mut Ctx,
    call: &NodeProto,
    f: &FunctionProto,
    args: Vec<Option<Val>>,
    functions: &[FunctionProto],
) -> Result<()> {
    let prefix = sanitize(call.output.first().map_or(call.op_type(), String::as_str));
    let rename = |n: &str| format!("{prefix}::{n}");
    let mut body_nodes = Vec::with_capacity(f.node.len());
    for (formal, actual) in f.input.iter().zip(&args) {
        if let Some(v) = actual {
            cx.vals.insert(rename(formal), v.clone());
        }
    }
    for n in &f.node {
        let mut n = n.clone();
        for i in n.input.iter_mut().filter(|i| !i.is_empty()) {
            *i = rename(i);
        }
        for o in n.output.iter_mut().filter(|o| !o.is_empty()) {
            *o = rename(o);
        }
        // Attribute references (`ref_attr_name`) take the call's attribute of that name.
        for a in n.attribute.iter_mut() {
            if let Some(r) = a.ref_attr_name.clone() {
                let actual = call
                    .attribute
                    .iter()
                    .find(|c| c.name() == r)
                    .ok_or_else(|| {
                        IrError::node(
                            node_label(call),
                            call.op_type(),
                            format!("function attribute `{r}` is not given by the call"),
                        )
                    })?;
                let name = a.name.clone();
                *a = actual.clone();
                a.name = name;
            }
        }
        body_nodes.push(n);
    }
    for n in &body_nodes {
        lower_node(cx, n, functions)?;
    }
    for (formal, actual) in f.output.iter().zip(&call.output) {
        if actual.is_empty() {
            continue;
        }
        let v = cx.vals.get(&rename(formal)).cloned().ok_or_else(|| {
            IrError::node(
                node_label(call),
                call.op_type(),
                format!("function output `{formal}` is not computed"),
            )
        })?;
        cx.vals.insert(actual.clone(), v);
    }
    Ok(())
}
