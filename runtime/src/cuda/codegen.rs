//! CUDA C source for the generated kernels: fused elementwise chains, reductions, strided copies
//! (every layout op), fills, and take-form gather / scatter-add.
//!
//! Pure string generation (no CUDA needed), so it is unit-tested everywhere. Shapes and strides
//! are baked into the source as constants: each distinct kernel is compiled once by NVRTC and
//! cached by its source text ([`super::device::Gpu::function`]).
//!
//! Numerics follow the CPU kernels (`crate::kernels`): floating-point math runs in `double` and
//! every node's value is rounded to its dtype (f32, bf16, f16) before the next node of a fused
//! chain reads it, so a fused chain computes what the unfused CPU nodes compute; integers wrap;
//! float-to-integer conversions saturate with NaN giving 0. bf16 and f16 are stored as their
//! 16-bit patterns and converted without CUDA's headers (NVRTC then needs no include path).

use std::fmt::Write;

use shardc_ir::{BinaryFn, CompareDir, DType, Graph, Op, ReduceFn, UnaryFn, ValueId};

/// The one entry point name of every generated module.
pub(crate) const ENTRY: &str = "shardc_kernel";

/// Threads per block of every generated kernel (reductions rely on it being a power of two).
pub(crate) const BLOCK: u32 = 256;

/// Why a node has no generated kernel (the executor runs it on the host instead, and says so).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Unsupported(pub String);

/// How a value is held while a kernel computes with it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Kind {
    Float,
    Int,
    Bool,
}

fn kind(d: DType) -> Kind {
    match d {
        DType::F32 | DType::F64 | DType::BF16 | DType::F16 => Kind::Float,
        DType::I32 | DType::I64 | DType::U32 | DType::U64 => Kind::Int,
        DType::Bool => Kind::Bool,
    }
}

/// The C type a value of `d` is stored as in device memory.
pub(crate) fn storage_type(d: DType) -> &'static str {
    match d {
        DType::F32 => "float",
        DType::F64 => "double",
        DType::BF16 | DType::F16 => "u16",
        DType::I32 => "int",
        // Unsigned values are held as i64, as the host runtime holds them.
        DType::I64 | DType::U32 | DType::U64 => "i64",
        DType::Bool => "u8",
    }
}

/// Bytes per element in device memory (bool is one byte).
pub(crate) fn storage_bytes(d: DType) -> usize {
    match d {
        DType::F64 | DType::I64 | DType::U32 | DType::U64 => 8,
        DType::F32 | DType::I32 => 4,
        DType::BF16 | DType::F16 => 2,
        DType::Bool => 1,
    }
}

fn compute_type(k: Kind) -> &'static str {
    match k {
        Kind::Float => "double",
        Kind::Int => "i64",
        Kind::Bool => "bool",
    }
}

/// Helpers every module starts with: bf16/f16 bit conversions, saturating float-to-integer
/// conversions, wrapping integer power.
const PRELUDE: &str = r#"typedef unsigned char u8;
typedef unsigned short u16;
typedef long long i64;
typedef unsigned long long u64;
__device__ __forceinline__ double bf16_load(u16 b) { return (double)__uint_as_float(((unsigned int)b) << 16); }
__device__ __forceinline__ u16 bf16_store(double d) {
  unsigned int u = __float_as_uint((float)d);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (u16)((u >> 16) | 0x40u);
  u += 0x7fffu + ((u >> 16) & 1u);
  return (u16)(u >> 16);
}
__device__ __forceinline__ double f16_load(u16 h) { float f; asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h)); return (double)f; }
__device__ __forceinline__ u16 f16_store(double d) { u16 h; float f = (float)d; asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f)); return h; }
__device__ __forceinline__ i64 sat_i64(double d) {
  if (d != d) return 0;
  if (d >= 9223372036854775807.0) return 9223372036854775807LL;
  if (d <= -9223372036854775808.0) return (-9223372036854775807LL - 1);
  return (i64)d;
}
__device__ __forceinline__ i64 sat_i32(double d) {
  if (d != d) return 0;
  if (d >= 2147483647.0) return 2147483647LL;
  if (d <= -2147483648.0) return -2147483648LL;
  return (i64)d;
}
__device__ __forceinline__ i64 wadd(i64 a, i64 b) { return (i64)((u64)a + (u64)b); }
__device__ __forceinline__ i64 wsub(i64 a, i64 b) { return (i64)((u64)a - (u64)b); }
__device__ __forceinline__ i64 wmul(i64 a, i64 b) { return (i64)((u64)a * (u64)b); }
__device__ __forceinline__ i64 wdiv(i64 a, i64 b) {
  if (b == 0) return -1;
  if (b == -1) return wsub(0, a);
  return a / b;
}
__device__ __forceinline__ i64 ipow(i64 x, i64 y) {
  if (y < 0) return x == 1 ? 1 : (x == -1 ? ((y % 2 == 0) ? 1 : -1) : 0);
  i64 r = 1; u64 e = (u64)y;
  while (e > 0) { if (e & 1) r = wmul(r, x); x = wmul(x, x); e >>= 1; }
  return r;
}
__device__ __forceinline__ double fmax_nan(double a, double b) { return (a != a || b != b) ? (a + b) : fmax(a, b); }
__device__ __forceinline__ double fmin_nan(double a, double b) { return (a != a || b != b) ? (a + b) : fmin(a, b); }
"#;

/// `x` (held as its kind's compute type) rounded to the precision of `d`.
fn round(d: DType, x: &str) -> String {
    match d {
        DType::F32 => format!("((double)(float)({x}))"),
        DType::BF16 => format!("bf16_load(bf16_store({x}))"),
        DType::F16 => format!("f16_load(f16_store({x}))"),
        DType::I32 => format!("((i64)(int)({x}))"),
        DType::U32 => format!("((i64)(unsigned int)({x}))"),
        DType::F64 | DType::I64 | DType::U64 | DType::Bool => x.to_string(),
    }
}

fn load(d: DType, x: &str) -> String {
    match d {
        DType::F32 | DType::F64 => format!("((double)({x}))"),
        DType::BF16 => format!("bf16_load({x})"),
        DType::F16 => format!("f16_load({x})"),
        DType::I32 | DType::I64 | DType::U32 | DType::U64 => format!("((i64)({x}))"),
        DType::Bool => format!("(({x}) != 0)"),
    }
}

fn store(d: DType, x: &str) -> String {
    match d {
        DType::F32 => format!("((float)({x}))"),
        DType::F64 => x.to_string(),
        DType::BF16 => format!("bf16_store({x})"),
        DType::F16 => format!("f16_store({x})"),
        DType::I32 => format!("((int)({x}))"),
        DType::I64 | DType::U32 | DType::U64 => x.to_string(),
        DType::Bool => format!("((u8)(({x}) ? 1 : 0))"),
    }
}

fn unary_expr(f: UnaryFn, k: Kind, a: &str) -> Result<String, Unsupported> {
    let bad = || Unsupported(format!("{} has no kernel for {k:?} operands", f.name()));
    Ok(match (k, f) {
        (Kind::Float, UnaryFn::Neg) => format!("(-{a})"),
        (Kind::Float, UnaryFn::Abs) => format!("fabs({a})"),
        (Kind::Float, UnaryFn::Exp) => format!("exp({a})"),
        (Kind::Float, UnaryFn::Log) => format!("log({a})"),
        (Kind::Float, UnaryFn::Tanh) => format!("tanh({a})"),
        // GELU, tanh approximation (Hendrycks & Gimpel 2016), as `kernels::elementwise::gelu`.
        (Kind::Float, UnaryFn::Gelu) => format!(
            "(0.5 * {a} * (1.0 + tanh(0.7978845608028654 * ({a} + 0.044715 * {a} * {a} * {a}))))"
        ),
        (Kind::Float, UnaryFn::Relu) => format!("({a} > 0.0 ? {a} : 0.0)"),
        (Kind::Float, UnaryFn::Sigmoid) => format!("(1.0 / (1.0 + exp(-{a})))"),
        (Kind::Float, UnaryFn::Sqrt) => format!("sqrt({a})"),
        (Kind::Float, UnaryFn::Rsqrt) => format!("(1.0 / sqrt({a}))"),
        (Kind::Float, UnaryFn::Sin) => format!("sin({a})"),
        (Kind::Float, UnaryFn::Cos) => format!("cos({a})"),
        (Kind::Float, UnaryFn::Erf) => format!("erf({a})"),
        (Kind::Float, UnaryFn::Expm1) => format!("expm1({a})"),
        (Kind::Float, UnaryFn::Log1p) => format!("log1p({a})"),
        (Kind::Float, UnaryFn::Floor) => format!("floor({a})"),
        (Kind::Float, UnaryFn::Ceil) => format!("ceil({a})"),
        // CUDA's `round` rounds half away from zero (XLA's round-nearest-afz), `rint` to even.
        (Kind::Float, UnaryFn::Round) => format!("round({a})"),
        (Kind::Float, UnaryFn::RoundEven) => format!("rint({a})"),
        // Keeps NaN and signed zeros, as XLA's sign does.
        (Kind::Float, UnaryFn::Sign) => format!("({a} > 0.0 ? 1.0 : ({a} < 0.0 ? -1.0 : {a}))"),
        (Kind::Int, UnaryFn::Sign) => format!("((i64)({a} > 0) - (i64)({a} < 0))"),
        (Kind::Int, UnaryFn::Not) => format!("(~{a})"),
        (Kind::Int, UnaryFn::Neg) => format!("wsub(0, {a})"),
        (Kind::Int, UnaryFn::Abs) => format!("({a} < 0 ? wsub(0, {a}) : {a})"),
        (Kind::Int, UnaryFn::Relu) => format!("({a} > 0 ? {a} : 0)"),
        (Kind::Bool, UnaryFn::Not) => format!("(!{a})"),
        _ => return Err(bad()),
    })
}

fn binary_expr(f: BinaryFn, k: Kind, a: &str, b: &str) -> Result<String, Unsupported> {
    let bad = || Unsupported(format!("{} has no kernel for {k:?} operands", f.name()));
    Ok(match (k, f) {
        (Kind::Float, BinaryFn::Add) => format!("({a} + {b})"),
        (Kind::Float, BinaryFn::Sub) => format!("({a} - {b})"),
        (Kind::Float, BinaryFn::Mul) => format!("({a} * {b})"),
        (Kind::Float, BinaryFn::Div) => format!("({a} / {b})"),
        (Kind::Float, BinaryFn::Max) => format!("fmax_nan({a}, {b})"),
        (Kind::Float, BinaryFn::Min) => format!("fmin_nan({a}, {b})"),
        (Kind::Float, BinaryFn::Pow) => format!("pow({a}, {b})"),
        (Kind::Float, BinaryFn::Rem) => format!("fmod({a}, {b})"),
        (Kind::Float, BinaryFn::Atan2) => format!("atan2({a}, {b})"),
        (Kind::Int, BinaryFn::Add) => format!("wadd({a}, {b})"),
        (Kind::Int, BinaryFn::Sub) => format!("wsub({a}, {b})"),
        (Kind::Int, BinaryFn::Mul) => format!("wmul({a}, {b})"),
        (Kind::Int, BinaryFn::Div) => format!("wdiv({a}, {b})"),
        (Kind::Int, BinaryFn::Max) => format!("({a} > {b} ? {a} : {b})"),
        (Kind::Int, BinaryFn::Min) => format!("({a} < {b} ? {a} : {b})"),
        (Kind::Int, BinaryFn::Pow) => format!("ipow({a}, {b})"),
        (Kind::Int, BinaryFn::And) => format!("({a} & {b})"),
        (Kind::Int, BinaryFn::Or) => format!("({a} | {b})"),
        (Kind::Int, BinaryFn::Xor) => format!("({a} ^ {b})"),
        (Kind::Bool, BinaryFn::Xor) => format!("({a} != {b})"),
        (Kind::Bool, BinaryFn::And) => format!("({a} && {b})"),
        (Kind::Bool, BinaryFn::Or) => format!("({a} || {b})"),
        _ => return Err(bad()),
    })
}

fn compare_expr(dir: CompareDir, a: &str, b: &str) -> String {
    let op = match dir {
        CompareDir::Eq => "==",
        CompareDir::Ne => "!=",
        CompareDir::Lt => "<",
        CompareDir::Le => "<=",
        CompareDir::Gt => ">",
        CompareDir::Ge => ">=",
    };
    format!("({a} {op} {b})")
}

/// Conversion of `a` (held as `from`'s kind) to `to`, as `kernels::elementwise::convert`:
/// integer to integer wraps, float to integer saturates (NaN gives 0), to bool is `!= 0`.
fn convert_expr(from: DType, to: DType, a: &str) -> String {
    match (kind(from), to) {
        (Kind::Float, DType::I32) => format!("sat_i32({a})"),
        (Kind::Float, DType::I64) => format!("sat_i64({a})"),
        (Kind::Int, DType::I32 | DType::I64) => a.to_string(),
        (Kind::Int, _) if kind(to) == Kind::Float => format!("((double)({a}))"),
        (Kind::Bool, DType::Bool) => a.to_string(),
        (Kind::Bool, _) if kind(to) == Kind::Float => format!("({a} ? 1.0 : 0.0)"),
        (Kind::Bool, _) => format!("({a} ? 1 : 0)"),
        (_, DType::Bool) => format!("({a} != 0)"),
        // Float to float: the caller rounds to `to`.
        _ => a.to_string(),
    }
}

/// Whether `op` is computed point by point (and so may join a fused elementwise kernel).
pub(crate) fn is_elementwise(op: &Op) -> bool {
    matches!(
        op,
        Op::Unary { .. } | Op::Binary { .. } | Op::Compare { .. } | Op::Select | Op::Convert
    )
}

/// An operand of a fused node: a kernel input or an earlier node of the same kernel.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Arg {
    Input(usize),
    Node(usize),
}

/// A chain (tree) of elementwise nodes computed by one kernel: `inputs` are the values it
/// reads, `nodes` in evaluation order, the last one the kernel's result.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Fused {
    /// The graph values the kernel reads, in parameter order.
    pub inputs: Vec<ValueId>,
    /// The fused graph nodes (for the op and dtype of each), in evaluation order.
    pub nodes: Vec<(ValueId, Vec<Arg>)>,
}

/// For every node, the consumer it is fused into: an elementwise node whose only use is one
/// elementwise consumer (and that is not itself wanted) is computed inside that consumer's
/// kernel rather than written to memory. `needed` and `wanted` are per node.
pub(crate) fn fusion_targets(g: &Graph, needed: &[bool], wanted: &[bool]) -> Vec<Option<usize>> {
    let n = g.nodes.len();
    let mut uses = vec![0usize; n];
    let mut consumer = vec![None; n];
    for (i, node) in g.nodes.iter().enumerate().filter(|(i, _)| needed[*i]) {
        for o in &node.operands {
            uses[o.index()] += 1;
            consumer[o.index()] = Some(i);
        }
    }
    (0..n)
        .map(|i| {
            let c = consumer[i]?;
            let fusable = needed[i]
                && !wanted[i]
                && uses[i] == 1
                && is_elementwise(&g.nodes[i].op)
                && is_elementwise(&g.nodes[c].op)
                && g.nodes[i].ty.dims() == g.nodes[c].ty.dims();
            fusable.then_some(c)
        })
        .collect()
}

/// The fused kernel rooted at `root` (a node not fused into another), given `fusion_targets`.
pub(crate) fn fused_at(g: &Graph, root: ValueId, targets: &[Option<usize>]) -> Fused {
    fn visit(g: &Graph, v: ValueId, targets: &[Option<usize>], out: &mut Fused) -> Arg {
        let node = g.node(v);
        let mut args = Vec::with_capacity(node.operands.len());
        for &o in &node.operands {
            let arg = if targets[o.index()] == Some(v.index()) {
                visit(g, o, targets, out)
            } else {
                let k = out.inputs.iter().position(|&x| x == o).unwrap_or_else(|| {
                    out.inputs.push(o);
                    out.inputs.len() - 1
                });
                Arg::Input(k)
            };
            args.push(arg);
        }
        out.nodes.push((v, args));
        Arg::Node(out.nodes.len() - 1)
    }
    let mut f = Fused {
        inputs: Vec::new(),
        nodes: Vec::new(),
    };
    visit(g, root, targets, &mut f);
    f
}

fn grid_stride_loop(body: &str) -> String {
    format!(
        "  for (u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (u64)gridDim.x * blockDim.x) {{\n{body}  }}\n"
    )
}

/// The CUDA C module of a fused elementwise kernel:
/// `shardc_kernel(const T0* in0, ..., OUT* out, u64 n)`.
pub(crate) fn elementwise_source(g: &Graph, f: &Fused) -> Result<String, Unsupported> {
    let mut params = String::new();
    let mut body = String::new();
    let name = |a: Arg| match a {
        Arg::Input(k) => format!("x{k}"),
        Arg::Node(j) => format!("t{j}"),
    };
    let dtype_of = |a: Arg| match a {
        Arg::Input(k) => g.ty(f.inputs[k]).dtype,
        Arg::Node(j) => g.ty(f.nodes[j].0).dtype,
    };
    for (k, &v) in f.inputs.iter().enumerate() {
        let d = g.ty(v).dtype;
        let _ = write!(params, "const {}* __restrict__ in{k}, ", storage_type(d));
        let _ = writeln!(
            body,
            "    const {} x{k} = {};",
            compute_type(kind(d)),
            load(d, &format!("in{k}[i]"))
        );
    }
    for (j, (v, args)) in f.nodes.iter().enumerate() {
        let node = g.node(*v);
        let d = node.ty.dtype;
        let a: Vec<String> = args.iter().map(|&x| name(x)).collect();
        let arg = |i: usize| {
            a.get(i)
                .cloned()
                .ok_or_else(|| Unsupported(format!("`{}` lacks operand {i}", node.name)))
        };
        let k0 = args.first().map_or(kind(d), |&x| kind(dtype_of(x)));
        let expr = match &node.op {
            Op::Unary { func } => unary_expr(*func, k0, &arg(0)?)?,
            Op::Binary { func } => binary_expr(*func, k0, &arg(0)?, &arg(1)?)?,
            Op::Compare { dir } => compare_expr(*dir, &arg(0)?, &arg(1)?),
            Op::Select => format!("({} ? {} : {})", arg(0)?, arg(1)?, arg(2)?),
            Op::Convert => convert_expr(dtype_of(args[0]), d, &arg(0)?),
            other => {
                return Err(Unsupported(format!(
                    "{} is not elementwise (invariant)",
                    other.name()
                )))
            }
        };
        let _ = writeln!(
            body,
            "    const {} t{j} = {};",
            compute_type(kind(d)),
            round(d, &expr)
        );
    }
    let (root, _) = f
        .nodes
        .last()
        .ok_or_else(|| Unsupported("empty fused kernel (invariant)".into()))?;
    let d = g.ty(*root).dtype;
    let _ = writeln!(
        body,
        "    out[i] = {};",
        store(d, &format!("t{}", f.nodes.len() - 1))
    );
    Ok(format!(
        "{PRELUDE}extern \"C\" __global__ void {ENTRY}({params}{}* __restrict__ out, u64 n) {{\n{}}}\n",
        storage_type(d),
        grid_stride_loop(&body)
    ))
}

/// Row-major strides of `dims` (in elements).
pub(crate) fn strides(dims: &[u64]) -> Vec<i64> {
    let mut s = vec![1i64; dims.len()];
    for d in (0..dims.len().saturating_sub(1)).rev() {
        s[d] = s[d + 1] * dims[d + 1] as i64;
    }
    s
}

/// C statements that set `off` to `base + sum_d c_d * strides[d]`, where `c` is the row-major
/// multi-index of the linear index `lin` over `dims`.
fn offset_code(lin: &str, off: &str, dims: &[u64], base: i64, strides: &[i64]) -> String {
    let mut s = format!("    i64 {off} = {base}LL;\n    {{ u64 r = {lin};\n");
    for d in (0..dims.len()).rev() {
        let _ = writeln!(
            s,
            "      {off} += (i64)(r % {}ULL) * {}LL; r /= {}ULL;",
            dims[d].max(1),
            strides[d],
            dims[d].max(1)
        );
    }
    s.push_str("    }\n");
    s
}

/// An affine copy over an index space: `dst[dst_base + c·dst_strides] = src[src_base +
/// c·src_strides]` for every multi-index `c` of `dims` (strides in elements, possibly 0 or
/// negative). Broadcast, transpose, reverse, slice, concatenate, pad and the dynamic slices are
/// all one or two of these.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct StridedCopy {
    pub dims: Vec<u64>,
    pub src_base: i64,
    pub src_strides: Vec<i64>,
    pub dst_base: i64,
    pub dst_strides: Vec<i64>,
    /// Bytes per element (the copy does not look at values).
    pub elem_bytes: usize,
}

fn bits_type(bytes: usize) -> &'static str {
    match bytes {
        1 => "u8",
        2 => "u16",
        4 => "unsigned int",
        _ => "u64",
    }
}

/// `shardc_kernel(const E* src, E* dst, u64 n)` with `n` the element count of `dims`.
pub(crate) fn strided_copy_source(c: &StridedCopy) -> String {
    let t = bits_type(c.elem_bytes);
    let mut body = offset_code("i", "s", &c.dims, c.src_base, &c.src_strides);
    body.push_str(&offset_code("i", "d", &c.dims, c.dst_base, &c.dst_strides));
    body.push_str("    dst[d] = src[s];\n");
    format!(
        "{PRELUDE}extern \"C\" __global__ void {ENTRY}(const {t}* __restrict__ src, {t}* __restrict__ dst, u64 n) {{\n{}}}\n",
        grid_stride_loop(&body)
    )
}

/// `shardc_kernel(T* dst, u64 n)`: every element set to `value` converted to `d`.
pub(crate) fn fill_source(d: DType, value: f64) -> String {
    let lit = match kind(d) {
        Kind::Float if value.is_nan() => "(0.0 / 0.0)".to_string(),
        Kind::Float if value.is_infinite() => if value > 0.0 {
            "(1.0 / 0.0)"
        } else {
            "(-1.0 / 0.0)"
        }
        .to_string(),
        Kind::Float => format!("{value:e}"),
        Kind::Int => format!("sat_i64({value:e})"),
        Kind::Bool => (value != 0.0).to_string(),
    };
    let v = match d {
        DType::I32 => format!("sat_i32({value:e})"),
        _ => lit,
    };
    let body = format!("    dst[i] = {};\n", store(d, &v));
    format!(
        "{PRELUDE}extern \"C\" __global__ void {ENTRY}({}* __restrict__ dst, u64 n) {{\n{}}}\n",
        storage_type(d),
        grid_stride_loop(&body)
    )
}

fn reduce_ops(func: ReduceFn, k: Kind) -> Result<(&'static str, &'static str), Unsupported> {
    // (initial value, combine(acc, v)) in the kind's compute type.
    Ok(match (k, func) {
        (Kind::Float, ReduceFn::Sum) => ("0.0", "acc + v"),
        (Kind::Float, ReduceFn::Max) => ("(-1.0 / 0.0)", "fmax_nan(acc, v)"),
        (Kind::Float, ReduceFn::Min) => ("(1.0 / 0.0)", "fmin_nan(acc, v)"),
        (Kind::Int, ReduceFn::Sum) => ("0", "wadd(acc, v)"),
        (Kind::Int, ReduceFn::Max) => ("(-9223372036854775807LL - 1)", "(acc > v ? acc : v)"),
        (Kind::Int, ReduceFn::Min) => ("9223372036854775807LL", "(acc < v ? acc : v)"),
        (Kind::Bool, _) => {
            return Err(Unsupported(format!(
                "reduce {} of bool has no kernel",
                func.name()
            )))
        }
    })
}

/// `shardc_kernel(const T* x, T* out, u64 n)`: one block per output element (`n` outputs),
/// its threads striding over the reduced elements, then a tree reduction in shared memory.
/// Float sums accumulate in `double`, as the CPU kernel's do.
pub(crate) fn reduce_source(
    func: ReduceFn,
    d: DType,
    dims: &[u64],
    reduced: &[usize],
) -> Result<String, Unsupported> {
    if let Some(&r) = reduced.iter().find(|&&r| r >= dims.len()) {
        return Err(Unsupported(format!(
            "reduced dim {r} is out of range for rank {}",
            dims.len()
        )));
    }
    let k = kind(d);
    let (init, combine) = reduce_ops(func, k)?;
    let st = strides(dims);
    let kept: Vec<usize> = (0..dims.len()).filter(|x| !reduced.contains(x)).collect();
    let pick = |ds: &[usize]| -> (Vec<u64>, Vec<i64>) {
        (
            ds.iter().map(|&x| dims[x]).collect(),
            ds.iter().map(|&x| st[x]).collect(),
        )
    };
    let (kd, ks) = pick(&kept);
    let (rd, rs) = pick(reduced);
    let r_count: u64 = rd.iter().product();
    let ct = compute_type(k);
    let mut s = format!(
        "{PRELUDE}extern \"C\" __global__ void {ENTRY}(const {st}* __restrict__ x, {st}* __restrict__ out, u64 n) {{\n  __shared__ {ct} part[{BLOCK}];\n  for (u64 o = blockIdx.x; o < n; o += gridDim.x) {{\n",
        st = storage_type(d)
    );
    s.push_str(&offset_code("o", "base", &kd, 0, &ks));
    let _ = writeln!(
        s,
        "    {ct} acc = {init};\n    for (u64 j = threadIdx.x; j < {r_count}ULL; j += blockDim.x) {{"
    );
    s.push_str(&offset_code("j", "off", &rd, 0, &rs));
    let _ = writeln!(
        s,
        "      {ct} v = {};\n      acc = {combine};\n    }}",
        load(d, "x[base + off]")
    );
    let _ = writeln!(
        s,
        "    part[threadIdx.x] = acc;\n    __syncthreads();\n    for (unsigned int w = blockDim.x / 2; w > 0; w >>= 1) {{\n      if (threadIdx.x < w) {{ {ct} v = part[threadIdx.x + w]; acc = part[threadIdx.x]; part[threadIdx.x] = {combine}; }}\n      __syncthreads();\n    }}\n    if (threadIdx.x == 0) out[o] = {};\n    __syncthreads();\n  }}\n}}",
        store(d, &round(d, "part[0]"))
    );
    Ok(s)
}

/// Take-form gather along one axis, `x` seen as `[pre, axis, post]`, `idx` as `[j]`:
/// `shardc_kernel(const T* x, const I* idx, T* out, u64 n)`, indices clamped into the axis.
pub(crate) fn gather_source(elem_bytes: usize, idx: DType, axis: u64, j: u64, post: u64) -> String {
    let t = bits_type(elem_bytes);
    let body = format!(
        "    u64 q = i % {post}ULL; u64 r = i / {post}ULL; u64 jj = r % {j}ULL; u64 p = r / {j}ULL;\n    i64 a = (i64)idx[jj]; a = a < 0 ? 0 : (a > {last}LL ? {last}LL : a);\n    out[i] = x[(p * {axis}ULL + (u64)a) * {post}ULL + q];\n",
        post = post.max(1),
        j = j.max(1),
        last = axis.saturating_sub(1),
    );
    format!(
        "{PRELUDE}extern \"C\" __global__ void {ENTRY}(const {t}* __restrict__ x, const {}* __restrict__ idx, {t}* __restrict__ out, u64 n) {{\n{}}}\n",
        storage_type(idx),
        grid_stride_loop(&body)
    )
}

/// The adjoint of [`gather_source`]: `shardc_kernel(const T* x, const I* idx, const T* upd,
/// T* out, u64 n)`, one thread per output element summing, in index order, the updates whose
/// clamped index lands on it (deterministic: no atomics).
pub(crate) fn scatter_add_source(
    d: DType,
    idx: DType,
    axis: u64,
    j: u64,
    post: u64,
) -> Result<String, Unsupported> {
    let k = kind(d);
    if k == Kind::Bool {
        return Err(Unsupported("scatter_add of bool has no kernel".into()));
    }
    let add = if k == Kind::Float {
        "acc + "
    } else {
        "wadd(acc, "
    };
    let close = if k == Kind::Float { "" } else { ")" };
    let ct = compute_type(k);
    let body = format!(
        "    u64 q = i % {post}ULL; u64 r = i / {post}ULL; u64 row = r % {axis}ULL; u64 p = r / {axis}ULL;\n    {ct} acc = {};\n    for (u64 jj = 0; jj < {j}ULL; ++jj) {{\n      i64 a = (i64)idx[jj]; a = a < 0 ? 0 : (a > {last}LL ? {last}LL : a);\n      if ((u64)a == row) acc = {add}{}{close};\n    }}\n    out[i] = {};\n",
        load(d, "x[i]"),
        load(d, &format!("upd[(p * {j}ULL + jj) * {post}ULL + q]")),
        store(d, &round(d, "acc")),
        post = post.max(1),
        axis = axis.max(1),
        last = axis.saturating_sub(1),
    );
    let st = storage_type(d);
    Ok(format!(
        "{PRELUDE}extern \"C\" __global__ void {ENTRY}(const {st}* __restrict__ x, const {}* __restrict__ idx, const {st}* __restrict__ upd, {st}* __restrict__ out, u64 n) {{\n{}}}\n",
        storage_type(idx),
        grid_stride_loop(&body)
    ))
}

#[cfg(test)]
#[path = "codegen_tests.rs"]
mod tests;
