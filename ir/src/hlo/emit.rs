//! Any graph printed as an XLA HLO module, one ENTRY instruction per node (named as the node,
//! with its sharding), for graphs that did not come from HLO (ONNX, shardc JSON, the zoo).
//!
//! Most ops are one HLO instruction. Ops XLA has no opcode for are printed as the few
//! instructions they stand for, the last of which carries the node's name and sharding: `relu`
//! as `maximum` with a broadcast zero, `gelu` as its tanh form (the formula the reference
//! executor computes), a broadcast that expands size-1 dims as a `reshape` that drops them
//! first, a splat constant as a scalar `constant` broadcast. Reductions call one `to_apply`
//! computation per function and element type. The ROOT is a tuple of the graph's outputs.
//! [`super::import`] reads the module back to the same graph up to those expansions.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use crate::dtype::DType;
use crate::error::IrError;
use crate::graph::{Graph, ValueId};
use crate::op::{BinaryFn, CompareDir, Conv, Literal, Op, ReduceFn, UnaryFn};
use crate::sharding::HloSharding;
use crate::types::TensorType;

/// The HLO module text of `g`, with `shardings[v]` (if any) on node `v`'s instruction, and the
/// instruction name of each node (its name, with characters HLO names cannot hold as `_`). Ops
/// the printer does not know are one error listing all of them with counts.
pub fn print_graph(
    g: &Graph,
    shardings: &[Option<HloSharding>],
) -> Result<(String, Vec<String>), IrError> {
    if shardings.len() != g.len() {
        return Err(IrError::Graph(format!(
            "{} shardings given for a graph of {} nodes",
            shardings.len(),
            g.len()
        )));
    }
    unsupported(g)?;
    let mut e = Emitter::new(g);
    for v in g.ids() {
        e.node(v, shardings[v.index()].as_ref())?;
    }
    let names = e.names.clone();
    Ok((e.finish(shardings)?, names))
}

/// Every op of `g` the printer cannot write, with counts, as one error.
fn unsupported(g: &Graph) -> Result<(), IrError> {
    let mut missing: BTreeMap<&str, usize> = BTreeMap::new();
    for n in &g.nodes {
        let ok = !matches!(
            n.op,
            Op::ScatterAdd { .. }
                | Op::GeneralGather(_)
                | Op::GeneralScatter { .. }
                | Op::Sort { .. }
                | Op::ReduceWindow { .. }
                | Op::SelectAndScatter { .. }
                | Op::DynamicSlice { .. }
                | Op::DynamicUpdateSlice
        ) && !n.op.is_collective()
            && !matches!(
                n.op,
                Op::AxisIndex { .. } | Op::Send { .. } | Op::Recv { .. }
            );
        if !ok {
            *missing.entry(n.op.name()).or_default() += 1;
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = missing
        .iter()
        .map(|(k, n)| format!("{k} ({n} node{})", if *n == 1 { "" } else { "s" }))
        .collect();
    Err(IrError::Graph(format!(
        "graph `{}`: the HLO export does not print these ops yet: {}",
        g.name,
        list.join(", ")
    )))
}

/// XLA's element type names.
fn dtype_name(d: DType) -> &'static str {
    match d {
        DType::F32 => "f32",
        DType::F64 => "f64",
        DType::BF16 => "bf16",
        DType::F16 => "f16",
        DType::I32 => "s32",
        DType::I64 => "s64",
        DType::U32 => "u32",
        DType::U64 => "u64",
        DType::Bool => "pred",
    }
}

fn type_text(t: &TensorType) -> String {
    let dims: Vec<String> = t.dims().iter().map(u64::to_string).collect();
    format!("{}[{}]", dtype_name(t.dtype), dims.join(","))
}

fn list<T: ToString>(xs: &[T]) -> String {
    let v: Vec<String> = xs.iter().map(T::to_string).collect();
    format!("{{{}}}", v.join(","))
}

fn by_x<T: ToString>(xs: &[T]) -> String {
    let v: Vec<String> = xs.iter().map(T::to_string).collect();
    v.join("x")
}

fn unary_opcode(f: UnaryFn) -> Option<&'static str> {
    Some(match f {
        UnaryFn::Neg => "negate",
        UnaryFn::Abs => "abs",
        UnaryFn::Exp => "exponential",
        UnaryFn::Log => "log",
        UnaryFn::Tanh => "tanh",
        UnaryFn::Sqrt => "sqrt",
        UnaryFn::Rsqrt => "rsqrt",
        UnaryFn::Sin => "sine",
        UnaryFn::Cos => "cosine",
        UnaryFn::Not => "not",
        UnaryFn::Sigmoid => "logistic",
        UnaryFn::Erf => "erf",
        UnaryFn::Expm1 => "exponential-minus-one",
        UnaryFn::Log1p => "log-plus-one",
        UnaryFn::Floor => "floor",
        UnaryFn::Ceil => "ceil",
        UnaryFn::Round => "round-nearest-afz",
        UnaryFn::RoundEven => "round-nearest-even",
        UnaryFn::Sign => "sign",
        UnaryFn::Popcnt => "popcnt",
        UnaryFn::Gelu | UnaryFn::Relu => return None,
    })
}

fn binary_opcode(f: BinaryFn) -> &'static str {
    match f {
        BinaryFn::Add => "add",
        BinaryFn::Sub => "subtract",
        BinaryFn::Mul => "multiply",
        BinaryFn::Div => "divide",
        BinaryFn::Max => "maximum",
        BinaryFn::Min => "minimum",
        BinaryFn::Pow => "power",
        BinaryFn::And => "and",
        BinaryFn::Or => "or",
        BinaryFn::Xor => "xor",
        BinaryFn::ShiftLeft => "shift-left",
        BinaryFn::ShiftRightLogical => "shift-right-logical",
        BinaryFn::ShiftRightArithmetic => "shift-right-arithmetic",
        BinaryFn::Rem => "remainder",
        BinaryFn::Atan2 => "atan2",
    }
}

fn direction(d: CompareDir) -> &'static str {
    match d {
        CompareDir::Eq => "EQ",
        CompareDir::Ne => "NE",
        CompareDir::Lt => "LT",
        CompareDir::Le => "LE",
        CompareDir::Gt => "GT",
        CompareDir::Ge => "GE",
    }
}

/// A number as an HLO literal of `dtype` (`inf`, `nan`, `true`, integers without a point).
fn number(x: f64, dtype: DType) -> String {
    if dtype == DType::Bool {
        return if x != 0.0 { "true" } else { "false" }.into();
    }
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf" } else { "-inf" }.into();
    }
    if !dtype.is_float() {
        return format!("{}", x as i128);
    }
    format!("{x:?}")
}

/// A dense literal, nested by dims as XLA prints it (`{ {1, 2}, {3, 4} }`).
fn dense(data: &[f64], dims: &[u64], dtype: DType) -> String {
    match dims {
        [] => data.first().map_or("0".into(), |&x| number(x, dtype)),
        [n] => {
            let v: Vec<String> = data[..*n as usize]
                .iter()
                .map(|&x| number(x, dtype))
                .collect();
            format!("{{{}}}", v.join(", "))
        }
        [n, rest @ ..] => {
            let inner = rest.iter().product::<u64>() as usize;
            let v: Vec<String> = (0..*n as usize)
                .map(|i| dense(&data[i * inner..], rest, dtype))
                .collect();
            format!("{{ {} }}", v.join(", "))
        }
    }
}

/// The identity of a reduction, as the importer recognizes it.
fn reduce_init(f: ReduceFn, d: DType) -> f64 {
    match (f, d) {
        (ReduceFn::Sum, _) => 0.0,
        (ReduceFn::Max, DType::Bool) => 0.0,
        (ReduceFn::Min, DType::Bool) => 1.0,
        (ReduceFn::Max, DType::I32) => i32::MIN as f64,
        (ReduceFn::Min, DType::I32) => i32::MAX as f64,
        (ReduceFn::Max, DType::I64) => i64::MIN as f64,
        (ReduceFn::Min, DType::I64) => i64::MAX as f64,
        (ReduceFn::Max, DType::U32 | DType::U64) => 0.0,
        (ReduceFn::Min, DType::U32) => u32::MAX as f64,
        (ReduceFn::Min, DType::U64) => u64::MAX as f64,
        (ReduceFn::Max, _) => f64::NEG_INFINITY,
        (ReduceFn::Min, _) => f64::INFINITY,
    }
}

fn reduce_opcode(f: ReduceFn, d: DType) -> &'static str {
    match (f, d) {
        (ReduceFn::Sum, DType::Bool) | (ReduceFn::Max, DType::Bool) => "or",
        (ReduceFn::Min, DType::Bool) => "and",
        (ReduceFn::Sum, _) => "add",
        (ReduceFn::Max, _) => "maximum",
        (ReduceFn::Min, _) => "minimum",
    }
}

/// `lhs_rhs->out` dim labels of a convolution.
fn dim_labels(c: &Conv) -> String {
    let d = &c.dims;
    let part = |rank: usize, a: (usize, char), b: (usize, char), spatial: &[usize]| {
        let mut s = vec!['?'; rank];
        s[a.0] = a.1;
        s[b.0] = b.1;
        for (k, &p) in spatial.iter().enumerate() {
            s[p] = char::from_digit(k as u32, 10).unwrap_or('?');
        }
        s.into_iter().collect::<String>()
    };
    let rank = d.input_spatial.len() + 2;
    format!(
        "{}_{}->{}",
        part(
            rank,
            (d.input_batch, 'b'),
            (d.input_feature, 'f'),
            &d.input_spatial
        ),
        part(
            rank,
            (d.kernel_output_feature, 'o'),
            (d.kernel_input_feature, 'i'),
            &d.kernel_spatial
        ),
        part(
            rank,
            (d.output_batch, 'b'),
            (d.output_feature, 'f'),
            &d.output_spatial
        ),
    )
}

struct Emitter<'g> {
    g: &'g Graph,
    /// The HLO instruction name of each node.
    names: Vec<String>,
    used: BTreeSet<String>,
    body: String,
    params: Vec<String>,
    /// `to_apply` computations needed, by (opcode, element type).
    reducers: BTreeSet<(&'static str, DType)>,
}

/// A node name as an HLO identifier (letters, digits, `_`, `.`, `-`).
fn identifier(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() {
        "value".into()
    } else {
        s
    }
}

impl<'g> Emitter<'g> {
    fn new(g: &'g Graph) -> Self {
        let mut e = Emitter {
            g,
            names: Vec::with_capacity(g.len()),
            used: BTreeSet::new(),
            body: String::new(),
            params: Vec::new(),
            reducers: BTreeSet::new(),
        };
        // The nodes' names first, so that the helper instructions never take one.
        for n in &g.nodes {
            let name = e.fresh(&n.name);
            e.names.push(name);
        }
        e
    }

    fn fresh(&mut self, want: &str) -> String {
        let base = identifier(want);
        let mut name = base.clone();
        let mut k = 1;
        while self.used.contains(&name) {
            name = format!("{base}.{k}");
            k += 1;
        }
        self.used.insert(name.clone());
        name
    }

    /// Writes one instruction; returns its name.
    fn inst(
        &mut self,
        name: String,
        ty: &TensorType,
        call: &str,
        sharding: Option<&HloSharding>,
    ) -> String {
        // invariant: writing to a String cannot fail.
        let _ = write!(self.body, "  %{name} = {} {call}", type_text(ty));
        if let Some(s) = sharding {
            let _ = write!(self.body, ", sharding={s}");
        }
        self.body.push('\n');
        name
    }

    /// A scalar constant of `dtype`.
    fn scalar(&mut self, base: &str, dtype: DType, x: f64) -> String {
        let n = self.fresh(base);
        let ty = TensorType::new(dtype, vec![]);
        self.inst(n, &ty, &format!("constant({})", number(x, dtype)), None)
    }

    /// A scalar constant broadcast to `ty`, as instruction `name`.
    fn splat(&mut self, name: String, ty: &TensorType, x: f64, s: Option<&HloSharding>) -> String {
        if ty.rank() == 0 {
            return self.inst(name, ty, &format!("constant({})", number(x, ty.dtype)), s);
        }
        let k = self.scalar(&format!("{name}.scalar"), ty.dtype, x);
        self.inst(name, ty, &format!("broadcast(%{k}), dimensions={{}}"), s)
    }

    fn operand(&self, v: ValueId) -> String {
        format!("%{}", self.names[v.index()])
    }

    fn node(&mut self, v: ValueId, s: Option<&HloSharding>) -> Result<(), IrError> {
        let node = self.g.node(v);
        let ty = node.ty.clone();
        let ops: Vec<String> = node.operands.iter().map(|&o| self.operand(o)).collect();
        let a = ops.join(", ");
        let want = node.name.clone();
        let call = match &node.op {
            Op::Input { .. } => {
                let k = self.params.len();
                let n = self.names[v.index()].clone();
                self.params.push(format!("{n}: {}", type_text(&ty)));
                self.inst(n, &ty, &format!("parameter({k})"), s);
                return Ok(());
            }
            Op::Constant { value } => match value {
                Literal::Splat(x) => {
                    let n = self.names[v.index()].clone();
                    self.splat(n, &ty, *x, s);
                    return Ok(());
                }
                Literal::Dense(d) => format!("constant({})", dense(d, ty.dims(), ty.dtype)),
            },
            Op::Iota { dim } => format!("iota(), iota_dimension={dim}"),
            Op::Unary { func } => match unary_opcode(*func) {
                Some(op) => format!("{op}({a})"),
                None => {
                    let n = self.names[v.index()].clone();
                    self.composite(n, *func, &ops[0], &ty, s);
                    return Ok(());
                }
            },
            Op::Binary { func } => format!("{}({a})", binary_opcode(*func)),
            Op::Compare { dir } => format!("compare({a}), direction={}", direction(*dir)),
            Op::Select => format!("select({a})"),
            Op::Convert => format!("convert({a})"),
            Op::Copy => format!("copy({a})"),
            Op::DotGeneral {
                lhs_batch,
                rhs_batch,
                lhs_contract,
                rhs_contract,
            } => format!(
                "dot({a}), lhs_batch_dims={}, lhs_contracting_dims={}, rhs_batch_dims={}, rhs_contracting_dims={}",
                list(lhs_batch),
                list(lhs_contract),
                list(rhs_batch),
                list(rhs_contract)
            ),
            Op::Reduce { func, dims } => {
                let dt = self.g.ty(node.operands[0]).dtype;
                let init = self.scalar(&format!("{want}.init"), dt, reduce_init(*func, dt));
                let opcode = reduce_opcode(*func, dt);
                self.reducers.insert((opcode, dt));
                format!(
                    "reduce({a}, %{init}), dimensions={}, to_apply=%{}",
                    list(dims),
                    reducer_name(opcode, dt)
                )
            }
            Op::Broadcast { dims } => {
                let x = node.operands[0];
                let xt = self.g.ty(x).clone();
                // XLA's broadcast keeps operand dims as they are: size-1 dims that expand are
                // reshaped away first.
                let keep: Vec<usize> = (0..xt.rank())
                    .filter(|&i| xt.dims()[i] == ty.dims()[dims[i]])
                    .collect();
                let mut src = ops[0].clone();
                if keep.len() != xt.rank() {
                    let kept: Vec<u64> = keep.iter().map(|&i| xt.dims()[i]).collect();
                    let r = self.fresh(&format!("{want}.squeezed"));
                    let rt = TensorType::new(xt.dtype, kept);
                    let r = self.inst(r, &rt, &format!("reshape({src})"), None);
                    src = format!("%{r}");
                }
                let bd: Vec<usize> = keep.iter().map(|&i| dims[i]).collect();
                format!("broadcast({src}), dimensions={}", list(&bd))
            }
            Op::Reshape => format!("reshape({a})"),
            Op::Transpose { perm } => format!("transpose({a}), dimensions={}", list(perm)),
            Op::Reverse { dims } => format!("reverse({a}), dimensions={}", list(dims)),
            Op::Slice {
                start,
                limit,
                stride,
            } => {
                let parts: Vec<String> = (0..start.len())
                    .map(|i| format!("[{}:{}:{}]", start[i], limit[i], stride[i]))
                    .collect();
                format!("slice({a}), slice={{{}}}", parts.join(", "))
            }
            Op::Concatenate { dim } => format!("concatenate({a}), dimensions={{{dim}}}"),
            Op::Pad {
                low,
                high,
                interior,
                value,
            } => {
                let dt = ty.dtype;
                let k = self.scalar(&format!("{want}.value"), dt, *value);
                let p: Vec<String> = (0..low.len())
                    .map(|i| format!("{}_{}_{}", low[i], high[i], interior[i]))
                    .collect();
                format!("pad({a}, %{k}), padding={}", p.join("x"))
            }
            Op::Convolution(c) => {
                let k = self.g.ty(node.operands[1]);
                let size: Vec<u64> = c.dims.kernel_spatial.iter().map(|&d| k.dims()[d]).collect();
                let pad: Vec<String> = c.padding.iter().map(|(l, h)| format!("{l}_{h}")).collect();
                format!(
                    "convolution({a}), window={{size={} stride={} pad={} lhs_dilate={} rhs_dilate={}}}, dim_labels={}, feature_group_count={}, batch_group_count={}",
                    by_x(&size),
                    by_x(&c.window_strides),
                    pad.join("x"),
                    by_x(&c.lhs_dilation),
                    by_x(&c.rhs_dilation),
                    dim_labels(c),
                    c.feature_group_count,
                    c.batch_group_count
                )
            }
            Op::Gather { axis } => {
                let xt = self.g.ty(node.operands[0]);
                let it = self.g.ty(node.operands[1]);
                let b = it.rank();
                let offset: Vec<usize> = (0..*axis).chain(axis + b..xt.rank() - 1 + b).collect();
                let sizes: Vec<u64> = (0..xt.rank())
                    .map(|d| if d == *axis { 1 } else { xt.dims()[d] })
                    .collect();
                format!(
                    "gather({a}), offset_dims={}, collapsed_slice_dims={{{axis}}}, start_index_map={{{axis}}}, index_vector_dim={b}, slice_sizes={}",
                    list(&offset),
                    list(&sizes)
                )
            }
            Op::BitcastConvert => format!("bitcast-convert({a})"),
            other => {
                return Err(IrError::node(
                    &want,
                    other.name(),
                    "the HLO export does not print this op",
                ))
            }
        };
        let n = self.names[v.index()].clone();
        self.inst(n, &ty, &call, s);
        Ok(())
    }

    /// `relu` and `gelu`, which XLA writes as several instructions; the last is `want`.
    fn composite(
        &mut self,
        want: String,
        f: UnaryFn,
        x: &str,
        ty: &TensorType,
        s: Option<&HloSharding>,
    ) {
        let step = |e: &mut Self, hint: &str, call: String, last: bool| {
            let n = if last {
                want.clone()
            } else {
                e.fresh(&format!("{want}.{hint}"))
            };
            let n = e.inst(n, ty, &call, s);
            format!("%{n}")
        };
        let c = |e: &mut Self, hint: &str, v: f64| {
            let n = e.fresh(&format!("{want}.{hint}"));
            format!("%{}", e.splat(n, ty, v, s))
        };
        if f == UnaryFn::Relu {
            let zero = c(self, "zero", 0.0);
            step(self, "", format!("maximum({x}, {zero})"), true);
            return;
        }
        // gelu(x) = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), as the runtime's kernel.
        let k3 = c(self, "c", 0.044715);
        let kr = c(self, "sqrt_2_over_pi", 0.797_884_560_802_865_4);
        let one = c(self, "one", 1.0);
        let half = c(self, "half", 0.5);
        let x2 = step(self, "x2", format!("multiply({x}, {x})"), false);
        let x3 = step(self, "x3", format!("multiply({x2}, {x})"), false);
        let t = step(self, "cx3", format!("multiply({k3}, {x3})"), false);
        let t = step(self, "inner", format!("add({x}, {t})"), false);
        let t = step(self, "scaled", format!("multiply({kr}, {t})"), false);
        let t = step(self, "tanh", format!("tanh({t})"), false);
        let t = step(self, "one_plus", format!("add({one}, {t})"), false);
        let hx = step(self, "half_x", format!("multiply({half}, {x})"), false);
        step(self, "", format!("multiply({hx}, {t})"), true);
    }

    fn finish(self, shardings: &[Option<HloSharding>]) -> Result<String, IrError> {
        let g = self.g;
        if g.outputs.is_empty() {
            return Err(IrError::Graph(format!(
                "graph `{}` has no outputs to print",
                g.name
            )));
        }
        let mut out = format!("HloModule {}\n\n", identifier(&g.name));
        for (opcode, dt) in &self.reducers {
            let t = dtype_name(*dt);
            let _ = writeln!(
                out,
                "%{} (a: {t}[], b: {t}[]) -> {t}[] {{\n  %a = {t}[] parameter(0)\n  %b = {t}[] parameter(1)\n  ROOT %r = {t}[] {opcode}(%a, %b)\n}}\n",
                reducer_name(opcode, *dt)
            );
        }
        let outs: Vec<String> = g.outputs.iter().map(|&o| type_text(g.ty(o))).collect();
        let _ = writeln!(
            out,
            "ENTRY %main ({}) -> ({}) {{",
            self.params.join(", "),
            outs.join(", ")
        );
        out.push_str(&self.body);
        let args: Vec<String> = g.outputs.iter().map(|&o| self.operand(o)).collect();
        let tuple_sharding: Option<Vec<HloSharding>> = g
            .outputs
            .iter()
            .map(|o| shardings[o.index()].clone())
            .collect();
        let _ = write!(
            out,
            "  ROOT %outputs = ({}) tuple({})",
            outs.join(", "),
            args.join(", ")
        );
        if let Some(parts) = tuple_sharding {
            let _ = write!(out, ", sharding={}", HloSharding::Tuple(parts));
        }
        out.push_str("\n}\n");
        Ok(out)
    }
}

fn reducer_name(opcode: &str, dt: DType) -> String {
    format!("{opcode}.{}", dtype_name(dt))
}
