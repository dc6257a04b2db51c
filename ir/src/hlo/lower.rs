//! HLO instructions of the ENTRY computation → graph nodes, one node per instruction.

use std::collections::{BTreeMap, BTreeSet};

use crate::dtype::DType;
use crate::error::IrError;
use crate::graph::{Graph, Role, ValueId};
use crate::op::{BinaryFn, CompareDir, Literal, Op, ReduceFn, UnaryFn};
use crate::sharding::{AllowedDirection, HloSharding};
use crate::types::TensorType;

use super::attrs;
use super::text::{Computation, HloModule, HloType, Instruction};

mod control;
mod gather;
mod manual;
mod misc;
mod reduce;
mod rng;
mod sort;
mod sort_comparator;
mod window;

/// What an ENTRY instruction became: a node, or (tuples) one per element.
#[derive(Clone, Debug, PartialEq)]
pub enum Lowered {
    Node(ValueId),
    Tuple(Vec<Lowered>),
}

/// The lowering's state.
pub(crate) struct Lowering<'m> {
    module: &'m HloModule,
    pub graph: Graph,
    pub values: BTreeMap<String, Lowered>,
    /// The `sharding=` of each ENTRY instruction that had one.
    pub shardings: BTreeMap<String, HloSharding>,
    /// Dims a `Sharding` custom-call leaves open (`backend_config="unspecified_dims=[..]"`),
    /// by instruction name: propagation may still shard them.
    pub open_dims: BTreeMap<String, Vec<usize>>,
    /// `ShardBarrierFrom`/`ShardBarrierTo` custom-calls (copies), by node name.
    pub barriers: Vec<(String, AllowedDirection)>,
    /// Manual-region nodes whose mesh axes are filled in once the mesh is known.
    pub manual: Vec<(ValueId, manual::Fixup)>,
    names: BTreeSet<String>,
    /// Scalar nodes whose value constants fix (for loop conditions), see `control.rs`.
    scalars: BTreeMap<ValueId, f64>,
    /// `CALL/` prefixes of the calls being inlined, outermost first.
    prefix: String,
    depth: usize,
}

/// Calls nest at most this deep (a guard against a module that calls itself).
const MAX_CALL_DEPTH: usize = 32;

fn dtype(name: &str) -> Option<DType> {
    Some(match name {
        "f32" => DType::F32,
        "f64" => DType::F64,
        "bf16" => DType::BF16,
        "f16" => DType::F16,
        "s32" => DType::I32,
        "s64" => DType::I64,
        "u32" => DType::U32,
        "u64" => DType::U64,
        "pred" => DType::Bool,
        _ => return None,
    })
}

fn unary(opcode: &str) -> Option<UnaryFn> {
    Some(match opcode {
        "negate" => UnaryFn::Neg,
        "abs" => UnaryFn::Abs,
        "exponential" => UnaryFn::Exp,
        "log" => UnaryFn::Log,
        "tanh" => UnaryFn::Tanh,
        "sqrt" => UnaryFn::Sqrt,
        "rsqrt" => UnaryFn::Rsqrt,
        "sine" => UnaryFn::Sin,
        "cosine" => UnaryFn::Cos,
        "not" => UnaryFn::Not,
        "logistic" => UnaryFn::Sigmoid,
        "erf" => UnaryFn::Erf,
        "exponential-minus-one" => UnaryFn::Expm1,
        "log-plus-one" => UnaryFn::Log1p,
        "floor" => UnaryFn::Floor,
        "ceil" => UnaryFn::Ceil,
        "round-nearest-afz" => UnaryFn::Round,
        "round-nearest-even" => UnaryFn::RoundEven,
        "sign" => UnaryFn::Sign,
        "popcnt" => UnaryFn::Popcnt,
        _ => return None,
    })
}

fn binary(opcode: &str) -> Option<BinaryFn> {
    Some(match opcode {
        "add" => BinaryFn::Add,
        "subtract" => BinaryFn::Sub,
        "multiply" => BinaryFn::Mul,
        "divide" => BinaryFn::Div,
        "maximum" => BinaryFn::Max,
        "minimum" => BinaryFn::Min,
        "power" => BinaryFn::Pow,
        "and" => BinaryFn::And,
        "or" => BinaryFn::Or,
        "xor" => BinaryFn::Xor,
        "shift-left" => BinaryFn::ShiftLeft,
        "shift-right-logical" => BinaryFn::ShiftRightLogical,
        "shift-right-arithmetic" => BinaryFn::ShiftRightArithmetic,
        "remainder" => BinaryFn::Rem,
        "atan2" => BinaryFn::Atan2,
        _ => return None,
    })
}

impl<'m> Lowering<'m> {
    pub fn new(module: &'m HloModule, name: &str) -> Self {
        let names = module
            .computations
            .iter()
            .flat_map(|c| c.instructions.iter().map(|i| i.name.clone()))
            .collect();
        Lowering {
            module,
            graph: Graph::new(name),
            values: BTreeMap::new(),
            shardings: BTreeMap::new(),
            open_dims: BTreeMap::new(),
            barriers: Vec::new(),
            manual: Vec::new(),
            names,
            scalars: BTreeMap::new(),
            prefix: String::new(),
            depth: 0,
        }
    }

    /// Lowers every ENTRY instruction in order and sets the graph's outputs from the ROOT.
    pub fn run(&mut self) -> Result<(), IrError> {
        let entry = self
            .module
            .entry()
            .expect("invariant: parse_module checks ENTRY");
        for inst in &entry.instructions {
            let lowered = self.instruction(inst).map_err(|m| {
                IrError::node(&inst.name, &inst.opcode, format!("line {}: {m}", inst.line))
            })?;
            if let Some(s) = inst.attr("sharding") {
                let s = HloSharding::parse(&strip_comments(s)).map_err(|e| {
                    IrError::node(&inst.name, &inst.opcode, format!("line {}: {e}", inst.line))
                })?;
                self.shardings.insert(inst.name.clone(), s);
            }
            self.values.insert(inst.name.clone(), lowered);
        }
        let root = entry
            .root()
            .ok_or_else(|| IrError::Graph("the ENTRY computation is empty".into()))?;
        let mut outs = Vec::new();
        flatten(&self.values[&root.name], &mut outs);
        self.graph.outputs = outs;
        Ok(())
    }

    /// The node name of an instruction: its name, under the prefixes of inlined calls.
    fn node_name(&self, inst: &Instruction) -> String {
        format!("{}{}", self.prefix, inst.name)
    }

    /// Inlines `call(args), to_apply=COMP`: the callee's instructions become nodes named
    /// `CALL/INST`, its parameters the call's operands; the call is the callee's ROOT value.
    fn inline_call(
        &mut self,
        inst: &Instruction,
        operand_names: &[String],
    ) -> Result<Lowered, String> {
        let comp_name = inst.attr("to_apply").ok_or("expected to_apply=")?;
        let module = self.module;
        let callee = module
            .computation(comp_name)
            .filter(|c| !c.entry)
            .ok_or_else(|| format!("called computation `{comp_name}` is not in the module"))?;
        if self.depth >= MAX_CALL_DEPTH {
            return Err(format!("calls nest deeper than {MAX_CALL_DEPTH}"));
        }
        let args = self.lowered_operands(operand_names)?;
        self.inline_scoped(&inst.name, callee, &args)
    }

    fn inline_body(&mut self, callee: &Computation, args: &[Lowered]) -> Result<Lowered, String> {
        for i in &callee.instructions {
            let v = if i.opcode == "parameter" {
                let k: usize = i
                    .args
                    .trim()
                    .parse()
                    .map_err(|_| format!("`{}`: parameter number expected", i.name))?;
                args.get(k)
                    .cloned()
                    .ok_or_else(|| format!("the call passes no argument {k}"))?
            } else {
                self.instruction(i).map_err(|m| {
                    format!(
                        "in called `{}`, `{}` ({}): {m}",
                        callee.name, i.name, i.opcode
                    )
                })?
            };
            self.values.insert(i.name.clone(), v);
        }
        let root = callee.root().ok_or("the called computation is empty")?;
        Ok(self.values[&root.name].clone())
    }

    /// The lowered values (tensors or tuples) of the named operands.
    fn lowered_operands(&self, names: &[String]) -> Result<Vec<Lowered>, String> {
        names
            .iter()
            .map(|o| {
                self.values
                    .get(o)
                    .cloned()
                    .ok_or_else(|| format!("operand `{o}` is not defined"))
            })
            .collect()
    }

    fn operand(&self, name: &str) -> Result<ValueId, String> {
        match self.values.get(name) {
            Some(Lowered::Node(v)) => Ok(*v),
            Some(Lowered::Tuple(_)) => Err(format!(
                "operand `{name}` is a tuple; only get-tuple-element and the ROOT may use tuples"
            )),
            None => Err(format!(
                "operand `{name}` is not defined before this instruction"
            )),
        }
    }

    fn tensor_type(ty: &HloType) -> Result<TensorType, String> {
        match ty {
            HloType::Array { dtype: d, dims, .. } => {
                let dt = dtype(d).ok_or_else(|| {
                    format!("element type `{d}` is not supported (f32, f64, bf16, f16, s32, s64, u32, u64, pred are)")
                })?;
                Ok(TensorType::new(dt, dims.clone()))
            }
            HloType::Tuple(_) => {
                Err("a tuple-shaped value is only supported for tuple instructions".into())
            }
        }
    }

    /// Pushes a node and checks that the type the op gives is the one HLO declares.
    fn push(
        &mut self,
        name: &str,
        op: Op,
        operands: Vec<ValueId>,
        ty: TensorType,
    ) -> Result<ValueId, String> {
        let v = self
            .graph
            .push(name, op, operands, Some(ty.clone()))
            .map_err(|e| match e {
                IrError::Node { message, .. } => message,
                e => e.to_string(),
            })?;
        self.note_scalar(v);
        if *self.graph.ty(v) != ty {
            return Err(format!(
                "HLO declares {ty}, the op gives {}",
                self.graph.ty(v)
            ));
        }
        Ok(v)
    }

    fn fresh_name(&mut self, base: &str) -> String {
        let mut k = 0;
        loop {
            let n = if k == 0 {
                base.to_string()
            } else {
                format!("{base}.{k}")
            };
            if self.names.insert(n.clone()) {
                return n;
            }
            k += 1;
        }
    }

    fn instruction(&mut self, inst: &Instruction) -> Result<Lowered, String> {
        let op_code = inst.opcode.as_str();
        let operand_names = if matches!(op_code, "constant" | "parameter" | "iota") {
            Vec::new()
        } else {
            inst.operands()
        };
        if op_code == "tuple" {
            return self.lowered_operands(&operand_names).map(Lowered::Tuple);
        }
        if op_code == "get-tuple-element" {
            let idx: usize = inst
                .attr("index")
                .and_then(|i| i.trim().parse().ok())
                .ok_or("expected index=N")?;
            return match operand_names.first().and_then(|o| self.values.get(o)) {
                Some(Lowered::Tuple(v)) => v.get(idx).cloned().ok_or_else(|| format!("tuple has no element {idx}")),
                _ => Err("get-tuple-element is supported only on a tuple instruction of the ENTRY computation".into()),
            };
        }
        match op_code {
            // Calls (tuple-valued ones too) are inlined, static loops unrolled.
            "call" => return self.inline_call(inst, &operand_names),
            "while" => return self.while_loop(inst, &operand_names),
            "call-start" => return self.call_start(inst, &operand_names),
            "call-done" => {
                return match operand_names.first().and_then(|o| self.values.get(o)) {
                    Some(Lowered::Tuple(parts)) if parts.len() == 3 => Ok(parts[1].clone()),
                    _ => Err("call-done takes the tuple of a call-start".into()),
                }
            }
            "conditional" | "async-start" => {
                return Err(format!(
                    "{op_code} is unsupported (calls are inlined and while loops with a static trip count unrolled)"
                ))
            }
            "rng-bit-generator" => {
                let [state] = &operand_names[..] else {
                    return Err("rng-bit-generator takes one operand, the state".into());
                };
                let state = self.operand(state)?;
                return self.rng_bit_generator(inst, state);
            }
            "rng" | "rng-get-and-update-state" => {
                return Err(format!(
                    "{op_code} is unsupported: its bits are the backend's (rng-bit-generator and jax's threefry import)"
                ))
            }
            _ => {}
        }
        if op_code == "copy" {
            if let [o] = &operand_names[..] {
                if let Some(Lowered::Tuple(elems)) = self.values.get(o).cloned() {
                    // A copy of a tuple copies each element (`NAME.0`, `NAME.1`, ...).
                    let name = self.node_name(inst);
                    return self.copy_tuple(&name, &elems);
                }
            }
        }
        let operands: Vec<ValueId> = operand_names
            .iter()
            .map(|o| self.operand(o))
            .collect::<Result<_, _>>()?;
        if op_code == "scatter" && operands.len() != 3 {
            return self.variadic_scatter(inst, &operands);
        }
        if op_code == "reduce" && operands.len() != 2 {
            return self.arg_reduce(inst, &operands);
        }
        if op_code == "sort" {
            return self.sort(inst, &operands);
        }
        if op_code == "topk" {
            let [x] = operands[..] else {
                return Err("topk takes one operand".into());
            };
            return self.topk(inst, x);
        }
        let ty = match &inst.ty {
            // A tuple-shaped parameter becomes one input per element (`NAME.0`, `NAME.1`, ...).
            Some(t @ HloType::Tuple(_)) if op_code == "parameter" => {
                let name = self.node_name(inst);
                return self.tuple_parameter(&name, t);
            }
            Some(t) => Self::tensor_type(t)?,
            // XLA infers an omitted type; we do for ops whose type follows from their operands.
            None => {
                let op = match op_code {
                    "copy" => Op::Copy,
                    "select" => Op::Select,
                    o => match (unary(o), binary(o)) {
                        (Some(func), _) => Op::Unary { func },
                        (_, Some(func)) => Op::Binary { func },
                        _ => return Err("the instruction omits its type; only elementwise ops, copy and select may".into()),
                    },
                };
                self.graph
                    .infer(&inst.name, &op, &operands, None)
                    .map_err(|e| e.to_string())?
            }
        };
        let req = |k: &str| {
            inst.attr(k)
                .ok_or_else(|| format!("expected attribute `{k}=`"))
        };
        match op_code {
            "all-reduce" | "all-gather" | "reduce-scatter" | "all-to-all"
            | "collective-permute" | "partition-id" => return self.collective(inst, &operands, ty),
            "custom-call" => match inst.attr("custom_call_target").map(|t| t.trim_matches('"')) {
                Some("SPMDFullToShardShape") => {
                    return self.manual_boundary(inst, true, &operands, ty)
                }
                Some("SPMDShardToFullShape") => {
                    return self.manual_boundary(inst, false, &operands, ty)
                }
                _ => {}
            },
            "parameter" if inst.attr("sharding").map(str::trim) == Some("{manual}") => {
                let name = self.node_name(inst);
                return self.manual_parameter(&name, &ty);
            }
            _ => {}
        }
        let node_name = self.node_name(inst);
        let name = node_name.as_str();
        let op = match op_code {
            "parameter" => return self.parameter(name, &ty),
            "constant" => {
                let vals = attrs::literal(&inst.args)?;
                let n = ty.shape.elements();
                if n > 1 << 16 {
                    return Err(format!(
                        "constant of {n} elements is too large to import (at most 65536)"
                    ));
                }
                let value = if vals.len() == 1 && n == 1 {
                    Literal::Splat(vals[0])
                } else if vals.len() as u64 == n {
                    Literal::Dense(vals)
                } else {
                    return Err(format!("literal has {} values, {ty} needs {n}", vals.len()));
                };
                Op::Constant { value }
            }
            "iota" => Op::Iota {
                dim: req("iota_dimension")?
                    .trim()
                    .parse()
                    .map_err(|_| "iota_dimension must be an integer")?,
            },
            "compare" => {
                let dir = match req("direction")?.trim() {
                    "EQ" => CompareDir::Eq,
                    "NE" => CompareDir::Ne,
                    "LT" => CompareDir::Lt,
                    "LE" => CompareDir::Le,
                    "GT" => CompareDir::Gt,
                    "GE" => CompareDir::Ge,
                    d => return Err(format!("unknown compare direction `{d}`")),
                };
                Op::Compare { dir }
            }
            "select" => Op::Select,
            "convert" => Op::Convert,
            "copy" => Op::Copy,
            "custom-call" => match inst.attr("custom_call_target").map(|t| t.trim_matches('"')) {
                Some("Sharding") => {
                    if let Some(dims) = unspecified_dims(inst.attr("backend_config"))? {
                        self.open_dims.insert(inst.name.clone(), dims);
                    }
                    Op::Copy
                }
                // A layout constraint fixes the memory layout, which shardings do not see.
                Some("LayoutConstraint") => Op::Copy,
                // Copies that shardings cross one way only.
                Some(t @ ("ShardBarrierFrom" | "ShardBarrierTo")) => {
                    let allowed = if t == "ShardBarrierFrom" {
                        AllowedDirection::Backward
                    } else {
                        AllowedDirection::Forward
                    };
                    self.barriers.push((name.to_string(), allowed));
                    Op::Copy
                }
                t => {
                    return Err(format!(
                        "custom-call target {} is not supported (Sharding, LayoutConstraint, ShardBarrierFrom and ShardBarrierTo are)",
                        t.unwrap_or("(none)")
                    ))
                }
            },
            "dot" => {
                let d = |k: &str| inst.attr(k).map_or(Ok(Vec::new()), attrs::dims);
                Op::DotGeneral {
                    lhs_batch: d("lhs_batch_dims")?,
                    rhs_batch: d("rhs_batch_dims")?,
                    lhs_contract: d("lhs_contracting_dims")?,
                    rhs_contract: d("rhs_contracting_dims")?,
                }
            }
            "reduce" => {
                if operands.len() != 2 {
                    return Err("only single-operand reduce (operand, init) is supported".into());
                }
                let func = self.reducer(req("to_apply")?)?;
                let dims = attrs::dims(req("dimensions")?)?;
                if self.graph.ty(operands[0]).dtype == DType::Bool {
                    return self.bool_reduce(name, func, dims, &operands, ty);
                }
                let op = Op::Reduce { func, dims };
                if self.is_identity(operands[1], func) {
                    let v = self.push(name, op, vec![operands[0]], ty)?;
                    return Ok(Lowered::Node(v));
                }
                // Any other init (a parameter, say) is folded in once, after the reduction.
                let body = self.fresh_name(&format!("{name}.body"));
                let r = self.push(&body, op, vec![operands[0]], ty.clone())?;
                let init = self.fresh_name(&format!("{name}.init"));
                let b = self.push(
                    &init,
                    Op::Broadcast { dims: Vec::new() },
                    vec![operands[1]],
                    ty.clone(),
                )?;
                let combine = match (func, ty.dtype) {
                    (ReduceFn::Sum, _) => BinaryFn::Add,
                    (ReduceFn::Max, DType::Bool) => BinaryFn::Or,
                    (ReduceFn::Min, DType::Bool) => BinaryFn::And,
                    (ReduceFn::Max, _) => BinaryFn::Max,
                    (ReduceFn::Min, _) => BinaryFn::Min,
                };
                let v = self.push(name, Op::Binary { func: combine }, vec![r, b], ty)?;
                return Ok(Lowered::Node(v));
            }
            "broadcast" => Op::Broadcast {
                dims: attrs::dims(req("dimensions")?)?,
            },
            "reshape" => Op::Reshape,
            "bitcast" => {
                let descending = |t: &Option<HloType>| match t {
                    Some(HloType::Array { dims, layout, .. }) => layout
                        .as_ref()
                        .map_or(true, |l| l.iter().rev().copied().eq(0..dims.len() as u64)),
                    _ => false,
                };
                let src = self.module.entry().and_then(|e| {
                    e.instructions
                        .iter()
                        .find(|i| Some(&i.name) == operand_names.first())
                });
                if !descending(&inst.ty) || !src.is_some_and(|s| descending(&s.ty)) {
                    return Err(
                        "a bitcast between non-row-major layouts is not a reshape; unsupported"
                            .into(),
                    );
                }
                Op::Reshape
            }
            "reverse" => Op::Reverse {
                dims: attrs::dims(req("dimensions")?)?,
            },
            "transpose" => Op::Transpose {
                perm: attrs::dims(req("dimensions")?)?,
            },
            "slice" => {
                let (start, limit, stride) = attrs::slice(req("slice")?)?;
                Op::Slice {
                    start,
                    limit,
                    stride,
                }
            }
            "concatenate" => {
                let d = attrs::dims(req("dimensions")?)?;
                match d[..] {
                    [dim] => Op::Concatenate { dim },
                    _ => return Err("expected one concatenate dimension".into()),
                }
            }
            "pad" => {
                if operands.len() != 2 {
                    return Err("pad needs (operand, padding value)".into());
                }
                let (low, high, interior) = attrs::padding(req("padding")?)?;
                let value = self
                    .scalar_constant(operands.get(1).copied())
                    .ok_or("the padding value must be a scalar constant")?;
                let v = self.push(
                    name,
                    Op::Pad {
                        low,
                        high,
                        interior,
                        value,
                    },
                    vec![operands[0]],
                    ty,
                )?;
                return Ok(Lowered::Node(v));
            }
            "convolution" => {
                let (conv, size, flipped) = attrs::convolution(
                    inst.attr("window"),
                    req("dim_labels")?,
                    inst.attr("feature_group_count"),
                    inst.attr("batch_group_count"),
                )?;
                if operands.len() == 2 {
                    let k = self.graph.ty(operands[1]).dims().to_vec();
                    let ks: Vec<u64> = conv
                        .dims
                        .kernel_spatial
                        .iter()
                        .map(|&d| k.get(d).copied().unwrap_or(0))
                        .collect();
                    if ks != size {
                        return Err(format!(
                            "window size {size:?} differs from the kernel's spatial dims {ks:?}"
                        ));
                    }
                }
                let mut operands = operands;
                if !flipped.is_empty() && operands.len() == 2 {
                    // `rhs_reversal`: the kernel flipped along those window dims first.
                    let dims = flipped.iter().map(|&i| conv.dims.kernel_spatial[i]).collect();
                    let k = operands[1];
                    let n = self.fresh_name(&format!("{name}.kernel_reversed"));
                    let kt = self.graph.ty(k).clone();
                    operands[1] = self.push(&n, Op::Reverse { dims }, vec![k], kt)?;
                }
                let v = self.push(name, Op::Convolution(conv), operands, ty)?;
                return Ok(Lowered::Node(v));
            }
            "gather" => return self.gather(inst, &operands, ty).map(Lowered::Node),
            "scatter" => return self.scatter(inst, &operands, ty).map(Lowered::Node),
            "dynamic-slice" => Op::DynamicSlice {
                sizes: attrs::ints(req("dynamic_slice_sizes")?)?,
            },
            "dynamic-update-slice" => Op::DynamicUpdateSlice,
            "bitcast-convert" => return self.bitcast_convert(inst, &operands, ty),
            "clamp" => return self.clamp(inst, &operands, ty),
            "is-finite" => {
                let [x] = operands[..] else {
                    return Err("is-finite takes one operand".into());
                };
                return self.is_finite(inst, x, ty);
            }
            "reduce-window" => return self.reduce_window(inst, &operands, ty),
            "select-and-scatter" => return self.select_and_scatter(inst, &operands, ty),
            o => {
                if let Some(func) = unary(o) {
                    Op::Unary { func }
                } else if let Some(func) = binary(o) {
                    Op::Binary { func }
                } else {
                    return Err(format!("opcode `{o}` is not supported"));
                }
            }
        };
        self.push(name, op, operands, ty).map(Lowered::Node)
    }

    /// The reduction a `to_apply` computation performs: its ROOT is add/maximum/minimum (or
    /// or/and on pred) of its two parameters.
    fn reducer(&self, comp: &str) -> Result<ReduceFn, String> {
        let c = self
            .module
            .computation(comp)
            .ok_or_else(|| format!("to_apply computation `{comp}` is not in the module"))?;
        let params: Vec<&str> = c
            .instructions
            .iter()
            .filter(|i| i.opcode == "parameter")
            .map(|i| i.name.as_str())
            .collect();
        let root = c.root().ok_or("empty to_apply computation")?;
        let ops = root.operands();
        let simple = c.instructions.len() == 3
            && params.len() == 2
            && ops.len() == 2
            && ops.iter().all(|o| params.contains(&o.as_str()));
        let is_pred = matches!(&root.ty, Some(HloType::Array { dtype, .. }) if dtype == "pred");
        let f = match (root.opcode.as_str(), is_pred) {
            ("add", false) => Some(ReduceFn::Sum),
            ("maximum", _) | ("or", true) => Some(ReduceFn::Max),
            ("minimum", _) | ("and", true) => Some(ReduceFn::Min),
            _ => None,
        };
        match f {
            Some(f) if simple => Ok(f),
            _ => Err(format!(
                "to_apply computation `{comp}` is not a simple add/max/min of its two parameters"
            )),
        }
    }

    fn scalar_constant(&self, v: Option<ValueId>) -> Option<f64> {
        let n = self.graph.node(v?);
        match &n.op {
            Op::Constant {
                value: Literal::Splat(x),
            } if n.ty.rank() == 0 => Some(*x),
            _ => None,
        }
    }

    /// Whether a reduce's init is a constant identity of its reduction (so `Reduce` alone is
    /// the whole instruction).
    fn is_identity(&self, init: ValueId, f: ReduceFn) -> bool {
        let Some(x) = self.scalar_constant(Some(init)) else {
            return false;
        };
        let dt = self.graph.ty(init).dtype;
        match (f, dt) {
            (ReduceFn::Sum, _) => x == 0.0,
            (ReduceFn::Max, DType::Bool) => x == 0.0,
            (ReduceFn::Min, DType::Bool) => x == 1.0,
            (ReduceFn::Max, DType::I32) => x == i32::MIN as f64,
            (ReduceFn::Min, DType::I32) => x == i32::MAX as f64,
            (ReduceFn::Max, DType::I64) => x == i64::MIN as f64,
            (ReduceFn::Min, DType::I64) => x == i64::MAX as f64,
            (ReduceFn::Max, _) => x == f64::NEG_INFINITY,
            (ReduceFn::Min, _) => x == f64::INFINITY,
        }
    }

    /// One input node per element of a tuple-shaped parameter, nested tuples flattened into
    /// `NAME.i.j` names.
    fn tuple_parameter(&mut self, name: &str, ty: &HloType) -> Result<Lowered, String> {
        match ty {
            HloType::Tuple(elems) => elems
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    let n = self.fresh_name(&format!("{name}.{i}"));
                    self.tuple_parameter(&n, t)
                })
                .collect::<Result<_, _>>()
                .map(Lowered::Tuple),
            t => {
                let t = Self::tensor_type(t)?;
                self.parameter(name, &t)
            }
        }
    }

    fn copy_tuple(&mut self, name: &str, elems: &[Lowered]) -> Result<Lowered, String> {
        elems
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let n = self.fresh_name(&format!("{name}.{i}"));
                match e {
                    Lowered::Node(v) => {
                        let ty = self.graph.ty(*v).clone();
                        self.push(&n, Op::Copy, vec![*v], ty).map(Lowered::Node)
                    }
                    Lowered::Tuple(es) => self.copy_tuple(&n, es),
                }
            })
            .collect::<Result<_, _>>()
            .map(Lowered::Tuple)
    }

    fn parameter(&mut self, name: &str, ty: &TensorType) -> Result<Lowered, String> {
        let v = self.push(name, Op::Input { init: None }, vec![], ty.clone())?;
        self.graph.nodes[v.index()].role = Role::Input;
        Ok(Lowered::Node(v))
    }
}

/// The dims of `backend_config="unspecified_dims=[1,2]"`, if the config names any.
fn unspecified_dims(config: Option<&str>) -> Result<Option<Vec<usize>>, String> {
    let Some(rest) = config
        .and_then(|c| c.split_once("unspecified_dims="))
        .map(|(_, r)| r)
    else {
        return Ok(None);
    };
    let list = rest
        .strip_prefix('[')
        .and_then(|r| r.split_once(']'))
        .map(|(l, _)| l)
        .ok_or_else(|| format!("unspecified_dims must be a list `[d, ...]`, got `{rest}`"))?;
    list.split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| {
            d.parse()
                .map_err(|_| format!("unspecified_dims entry `{d}` is not a dim number"))
        })
        .collect::<Result<_, _>>()
        .map(Some)
}

/// The text without the `/*index=5*/` comments XLA writes into long tuples.
fn strip_comments(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.contains("/*") {
        return s.into();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(a) = rest.find("/*") {
        out.push_str(&rest[..a]);
        rest = match rest[a..].find("*/") {
            Some(b) => &rest[a + b + 2..],
            None => "",
        };
    }
    out.push_str(rest);
    out.into()
}

pub(crate) use manual::{resolve as resolve_manual, Fixup};

pub(crate) fn flatten(l: &Lowered, out: &mut Vec<ValueId>) {
    match l {
        Lowered::Node(v) => out.push(*v),
        Lowered::Tuple(v) => v.iter().for_each(|e| flatten(e, out)),
    }
}
