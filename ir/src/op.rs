//! The closed op set.
//!
//! Each op is one variant with its attributes. What an op *means* (shape rule, factors, FLOPs,
//! gradient) lives in one table entry per op family under `ops/`; the CPU kernel lives in the
//! runtime crate. Nothing else matches on op kinds except through those tables.

use serde::{Deserialize, Serialize};

/// Elementwise unary functions.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnaryFn {
    Neg,
    Abs,
    Exp,
    Log,
    Tanh,
    /// GELU, tanh approximation (as GPT-2 and Megatron use).
    Gelu,
    Relu,
    Sigmoid,
    Sqrt,
    Rsqrt,
    Sin,
    Cos,
    /// Logical not on bool, bitwise not on integers.
    Not,
    /// The error function.
    Erf,
    /// `exp(x) - 1`, accurate near 0.
    Expm1,
    /// `ln(1 + x)`, accurate near 0.
    Log1p,
    Floor,
    Ceil,
    /// Round half away from zero (XLA's `round-nearest-afz`).
    Round,
    /// Round half to even (XLA's `round-nearest-even`).
    RoundEven,
    /// -1, 0 or 1 (NaN stays NaN).
    Sign,
    /// The number of set bits of an integer.
    Popcnt,
}

impl UnaryFn {
    pub const ALL: [UnaryFn; 22] = [
        UnaryFn::Neg,
        UnaryFn::Abs,
        UnaryFn::Exp,
        UnaryFn::Log,
        UnaryFn::Tanh,
        UnaryFn::Gelu,
        UnaryFn::Relu,
        UnaryFn::Sigmoid,
        UnaryFn::Sqrt,
        UnaryFn::Rsqrt,
        UnaryFn::Sin,
        UnaryFn::Cos,
        UnaryFn::Not,
        UnaryFn::Erf,
        UnaryFn::Expm1,
        UnaryFn::Log1p,
        UnaryFn::Floor,
        UnaryFn::Ceil,
        UnaryFn::Round,
        UnaryFn::RoundEven,
        UnaryFn::Sign,
        UnaryFn::Popcnt,
    ];

    pub fn name(self) -> &'static str {
        match self {
            UnaryFn::Neg => "neg",
            UnaryFn::Abs => "abs",
            UnaryFn::Exp => "exp",
            UnaryFn::Log => "log",
            UnaryFn::Tanh => "tanh",
            UnaryFn::Gelu => "gelu",
            UnaryFn::Relu => "relu",
            UnaryFn::Sigmoid => "sigmoid",
            UnaryFn::Sqrt => "sqrt",
            UnaryFn::Rsqrt => "rsqrt",
            UnaryFn::Sin => "sin",
            UnaryFn::Cos => "cos",
            UnaryFn::Not => "not",
            UnaryFn::Erf => "erf",
            UnaryFn::Expm1 => "expm1",
            UnaryFn::Log1p => "log1p",
            UnaryFn::Floor => "floor",
            UnaryFn::Ceil => "ceil",
            UnaryFn::Round => "round",
            UnaryFn::RoundEven => "round_even",
            UnaryFn::Sign => "sign",
            UnaryFn::Popcnt => "popcnt",
        }
    }
}

/// Elementwise binary functions.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BinaryFn {
    Add,
    Sub,
    Mul,
    Div,
    Max,
    Min,
    Pow,
    /// Logical and on bool, bitwise and on integers.
    And,
    /// Logical or on bool, bitwise or on integers.
    Or,
    /// Logical xor on bool, bitwise xor on integers.
    Xor,
    /// Integer shift left; a shift by the bit width or more gives 0.
    ShiftLeft,
    /// Integer shift right filling with zeros; by the bit width or more gives 0.
    ShiftRightLogical,
    /// Integer shift right filling with the sign bit.
    ShiftRightArithmetic,
    /// The remainder of truncated division (sign of the dividend, as C's `fmod`).
    Rem,
    /// `atan2(x, y)`: the angle of the point `(y, x)`, as `x` the numerator.
    Atan2,
}

impl BinaryFn {
    pub const ALL: [BinaryFn; 15] = [
        BinaryFn::Add,
        BinaryFn::Sub,
        BinaryFn::Mul,
        BinaryFn::Div,
        BinaryFn::Max,
        BinaryFn::Min,
        BinaryFn::Pow,
        BinaryFn::And,
        BinaryFn::Or,
        BinaryFn::Xor,
        BinaryFn::ShiftLeft,
        BinaryFn::ShiftRightLogical,
        BinaryFn::ShiftRightArithmetic,
        BinaryFn::Rem,
        BinaryFn::Atan2,
    ];

    pub fn name(self) -> &'static str {
        match self {
            BinaryFn::Add => "add",
            BinaryFn::Sub => "sub",
            BinaryFn::Mul => "mul",
            BinaryFn::Div => "div",
            BinaryFn::Max => "max",
            BinaryFn::Min => "min",
            BinaryFn::Pow => "pow",
            BinaryFn::And => "and",
            BinaryFn::Or => "or",
            BinaryFn::Xor => "xor",
            BinaryFn::ShiftLeft => "shift_left",
            BinaryFn::ShiftRightLogical => "shift_right_logical",
            BinaryFn::ShiftRightArithmetic => "shift_right_arithmetic",
            BinaryFn::Rem => "rem",
            BinaryFn::Atan2 => "atan2",
        }
    }
}

/// Comparison directions.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CompareDir {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// Reductions (for `reduce` and for collectives that reduce).
#[derive(
    Copy, Clone, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize, PartialOrd, Ord,
)]
#[serde(rename_all = "snake_case")]
pub enum ReduceFn {
    #[default]
    Sum,
    Max,
    Min,
}

impl ReduceFn {
    pub fn name(self) -> &'static str {
        match self {
            ReduceFn::Sum => "sum",
            ReduceFn::Max => "max",
            ReduceFn::Min => "min",
        }
    }
}

/// A constant's value: one number splatted over the shape, or every element (row-major).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Literal {
    Splat(f64),
    Dense(Vec<f64>),
}

/// How the reference executor fills an input when it makes random inputs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Init {
    /// Normal with mean 0 and this standard deviation.
    Normal { std: f64 },
    /// Uniform in `[low, high)`.
    Uniform { low: f64, high: f64 },
    /// Every element this value (zeros for optimizer state, ones for layer-norm gains).
    Fill { value: f64 },
    /// Integers uniform in `[0, high)` (token ids, labels, expert indices).
    Index { high: u64 },
}

/// Dimension numbers of a convolution (XLA's `dim_labels`), every index a dim of its tensor.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ConvDims {
    pub input_batch: usize,
    pub input_feature: usize,
    pub input_spatial: Vec<usize>,
    pub kernel_input_feature: usize,
    pub kernel_output_feature: usize,
    pub kernel_spatial: Vec<usize>,
    pub output_batch: usize,
    pub output_feature: usize,
    pub output_spatial: Vec<usize>,
}

impl ConvDims {
    /// The usual layout: input `[N, C, spatial...]`, kernel `[O, I, spatial...]`, output `[N, O, spatial...]`.
    pub fn nchw(spatial_rank: usize) -> Self {
        let sp: Vec<usize> = (2..2 + spatial_rank).collect();
        ConvDims {
            input_batch: 0,
            input_feature: 1,
            input_spatial: sp.clone(),
            kernel_input_feature: 1,
            kernel_output_feature: 0,
            kernel_spatial: sp.clone(),
            output_batch: 0,
            output_feature: 1,
            output_spatial: sp,
        }
    }
}

/// A convolution's attributes (XLA semantics). Padding may be negative.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Conv {
    pub dims: ConvDims,
    pub window_strides: Vec<u64>,
    /// `(low, high)` padding per spatial dim.
    pub padding: Vec<(i64, i64)>,
    pub lhs_dilation: Vec<u64>,
    pub rhs_dilation: Vec<u64>,
    pub feature_group_count: u64,
    pub batch_group_count: u64,
}

impl Conv {
    /// A plain NCHW convolution with the given strides and symmetric padding, no dilation or groups.
    pub fn simple(spatial_rank: usize, stride: u64, pad: i64) -> Self {
        Conv {
            dims: ConvDims::nchw(spatial_rank),
            window_strides: vec![stride; spatial_rank],
            padding: vec![(pad, pad); spatial_rank],
            lhs_dilation: vec![1; spatial_rank],
            rhs_dilation: vec![1; spatial_rank],
            feature_group_count: 1,
            batch_group_count: 1,
        }
    }
}

/// Dimension numbers of XLA's general gather (field for field as XLA's `GatherDimensionNumbers`
/// plus `slice_sizes`; see <https://openxla.org/xla/operation_semantics#gather>).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatherDims {
    /// Result dims that hold the slice's (uncollapsed) dims, ascending.
    pub offset_dims: Vec<usize>,
    /// Operand dims that the slice drops (size-1 slices), ascending.
    pub collapsed_slice_dims: Vec<usize>,
    /// `start_index_map[k]`: the operand dim that index vector element `k` starts.
    pub start_index_map: Vec<usize>,
    /// The indices' dim that holds the index vector (its rank: an implicit trailing dim of 1).
    pub index_vector_dim: usize,
    /// The slice's size in every operand dim.
    pub slice_sizes: Vec<u64>,
    /// Operand dims indexed by the paired batch dim of the indices, ascending.
    #[serde(default)]
    pub operand_batching_dims: Vec<usize>,
    /// The indices' dims paired with `operand_batching_dims`.
    #[serde(default)]
    pub start_indices_batching_dims: Vec<usize>,
}

/// Dimension numbers of XLA's general scatter (field for field as XLA's
/// `ScatterDimensionNumbers`; see <https://openxla.org/xla/operation_semantics#scatter>).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScatterDims {
    /// Updates dims that hold the window's (uninserted) dims, ascending.
    pub update_window_dims: Vec<usize>,
    /// Operand dims where the window has an implicit size-1 dim, ascending.
    pub inserted_window_dims: Vec<usize>,
    /// `scatter_dims_to_operand_dims[k]`: the operand dim that index vector element `k` starts.
    pub scatter_dims_to_operand_dims: Vec<usize>,
    /// The indices' dim that holds the index vector (its rank: an implicit trailing dim of 1).
    pub index_vector_dim: usize,
    /// Operand dims indexed by the paired batch dim of the indices, ascending.
    #[serde(default)]
    pub input_batching_dims: Vec<usize>,
    /// The indices' dims paired with `input_batching_dims`.
    #[serde(default)]
    pub scatter_indices_batching_dims: Vec<usize>,
}

/// A window over every dim of a tensor (XLA's `window={size=.. stride=.. pad=.. lhs_dilate=..
/// rhs_dilate=..}` of `reduce-window` and `select-and-scatter`), one entry per dim.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Window {
    pub size: Vec<u64>,
    pub stride: Vec<u64>,
    /// `(low, high)` padding per dim.
    pub padding: Vec<(u64, u64)>,
    /// Base (input) dilation per dim (1: none).
    pub base_dilation: Vec<u64>,
    /// Window dilation per dim (1: none).
    pub window_dilation: Vec<u64>,
}

impl Window {
    /// A window of `size` and `stride` per dim, no padding or dilation.
    pub fn simple(size: Vec<u64>, stride: Vec<u64>) -> Self {
        let n = size.len();
        Window {
            size,
            stride,
            padding: vec![(0, 0); n],
            base_dilation: vec![1; n],
            window_dilation: vec![1; n],
        }
    }
}

/// The op of a node. Operands are positional; the list under each variant says what they are.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Op {
    /// A value fed from outside: an input, a parameter or optimizer state (the node's role says
    /// which). Operands: none.
    Input {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        init: Option<Init>,
    },
    /// A constant of the node's type. Operands: none.
    Constant { value: Literal },
    /// `0, 1, 2, ...` along `dim`, of the node's type. Operands: none.
    Iota { dim: usize },
    /// Operands: `x`.
    Unary { func: UnaryFn },
    /// Operands: `x, y` of one shape.
    Binary { func: BinaryFn },
    /// Operands: `x, y` of one shape; the result is bool.
    Compare { dir: CompareDir },
    /// Operands: `pred, on_true, on_false`, all of one shape.
    Select,
    /// Element type conversion to the node's dtype. Operands: `x`.
    Convert,
    /// Identity (a value that can carry its own sharding, like XLA's `copy`). Operands: `x`.
    Copy,
    /// Batched matrix product with einsum semantics. The result's dims are the batch dims, then
    /// the free dims of `lhs`, then those of `rhs`. Operands: `lhs, rhs`.
    DotGeneral {
        lhs_batch: Vec<usize>,
        rhs_batch: Vec<usize>,
        lhs_contract: Vec<usize>,
        rhs_contract: Vec<usize>,
    },
    /// Reduce `dims` away. Operands: `x`.
    Reduce { func: ReduceFn, dims: Vec<usize> },
    /// Broadcast to the node's shape; operand dim `i` becomes result dim `dims[i]` and has the
    /// same size or size 1. Operands: `x`.
    Broadcast { dims: Vec<usize> },
    /// Row-major reshape to the node's shape. Operands: `x`.
    Reshape,
    /// Result dim `i` is operand dim `perm[i]`. Operands: `x`.
    Transpose { perm: Vec<usize> },
    /// Reverses the order of elements along `dims`. Operands: `x`.
    Reverse { dims: Vec<usize> },
    /// Static strided slice `[start, limit)`. Operands: `x`.
    Slice {
        start: Vec<u64>,
        limit: Vec<u64>,
        stride: Vec<u64>,
    },
    /// Operands: two or more tensors that agree except in `dim`.
    Concatenate { dim: usize },
    /// Pad with `value`; `low`/`high` may be negative (cropping). Operands: `x`.
    Pad {
        low: Vec<i64>,
        high: Vec<i64>,
        interior: Vec<u64>,
        value: f64,
    },
    /// N-d convolution (XLA semantics). Operands: `input, kernel`.
    Convolution(Conv),
    /// `take(x, indices, axis)`: the result's dims are `x`'s before `axis`, then `indices`'s, then
    /// `x`'s after `axis`. Out-of-range indices are clamped. Operands: `x, indices`.
    Gather { axis: usize },
    /// The adjoint of `gather`: adds `updates` into `x` at `indices` along `axis`.
    /// Operands: `x, indices, updates` (`updates` has the shape `gather` would give).
    ScatterAdd { axis: usize },
    /// XLA's general gather: one slice of `slice_sizes` per index vector, start indices clamped so
    /// the slice fits. Operands: `operand, start_indices` (integers).
    GeneralGather(GatherDims),
    /// XLA's general scatter of one operand: each update window is combined into `operand` at its
    /// start index with `combine` (absent: replaced); windows that do not fit are skipped.
    /// Operands: `operand, scatter_indices` (integers), `updates`.
    GeneralScatter {
        dims: ScatterDims,
        /// `add`, `mul`, `max` or `min`; absent (`None`) replaces.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        combine: Option<BinaryFn>,
    },
    /// Sorts along `dim` by the first operand (the keys), ascending or `descending`, and gives
    /// operand `output` permuted the same way. Ties keep their original order: the reference
    /// sort is always stable (a valid order for an unstable one too); `stable` records whether
    /// the source asked for stability. Floats order by IEEE total order (`-NaN < -inf < ... <
    /// -0 < +0 < ... < inf < NaN`, XLA's `TOTALORDER`). Operands: `keys, values...`, all of one
    /// shape (dtypes may differ).
    Sort {
        dim: usize,
        #[serde(default)]
        descending: bool,
        #[serde(default)]
        stable: bool,
        /// The operand the result is (0: the sorted keys).
        #[serde(default)]
        output: usize,
    },
    /// Reinterprets the bits of each element as the node's dtype, which has the same width
    /// (`f32` <-> `u32`/`i32`, `f64` <-> `u64`/`i64`). Operands: `x`.
    BitcastConvert,
    /// Reduces each window of `x` with `func`, starting from `init` (which also fills the
    /// padding): max-pooling, sum-pooling, cumulative sums. Operands: `x`.
    ReduceWindow {
        func: ReduceFn,
        window: Window,
        init: f64,
    },
    /// The gradient of a max (or min) pool: for each window of `operand` the element that
    /// `select` picks (the first `x` with `x select y` against every later `y`: `ge` picks the
    /// first maximum), receives the window's `source` value, added onto a result filled with
    /// `init`. Padded positions are never picked. Operands: `operand, source` (the
    /// `reduce_window` result's shape).
    SelectAndScatter {
        window: Window,
        select: CompareDir,
        init: f64,
    },
    /// A slice of static `sizes` at dynamic start indices (clamped into range, as XLA does).
    /// Operands: `x`, then one integer scalar start per dim.
    DynamicSlice { sizes: Vec<u64> },
    /// Writes `update` into `x` at dynamic start indices (clamped). Operands: `x, update`, then one
    /// integer scalar start per dim.
    DynamicUpdateSlice,
    /// This device's linear coordinate along mesh `axes` (major first), an i32 scalar: GSPMD's
    /// partition-id, restricted to axes. Operands: none.
    AxisIndex { axes: Vec<String> },
    /// Reduces across the devices of mesh `axes`. Operands: `x`.
    AllReduce { axes: Vec<String>, func: ReduceFn },
    /// Concatenates the shards of the devices of `axes` along `dim`. Operands: `x`.
    AllGather { dim: usize, axes: Vec<String> },
    /// Reduces across `axes`, each device keeping its shard of `dim`. Operands: `x`.
    ReduceScatter {
        dim: usize,
        axes: Vec<String>,
        func: ReduceFn,
    },
    /// Splits `split_dim` over the devices of `axes` and concatenates what arrives along
    /// `concat_dim`. Operands: `x`.
    AllToAll {
        split_dim: usize,
        concat_dim: usize,
        axes: Vec<String>,
    },
    /// Within each group of devices that differ only along `axes`, the device at linear
    /// coordinate `s` over `axes` (major first) sends to the one at `t`, for each pair `(s, t)`;
    /// a device that receives nothing gets zeros. Operands: `x`. (Version 1 files name one
    /// axis as `"axis": "x"`, which still reads.)
    CollectivePermute {
        #[serde(alias = "axis", deserialize_with = "one_or_many")]
        axes: Vec<String>,
        pairs: Vec<(u64, u64)>,
    },
    /// Sends `x` to pipeline stage `to_stage` under `tag`; the result is `x`. Operands: `x`.
    Send { to_stage: u32, tag: String },
    /// Receives the value of the node's type sent under `tag` from `from_stage`. Operands: none.
    Recv { from_stage: u32, tag: String },
    /// Enters a manual region (jax's `shard_map`, XLA's `SPMDFullToShardShape`): the result is
    /// this device's block of `x` when dim `d` is split over mesh axes `dims[d]` (major first),
    /// the local shape the region's per-device code works on. The region is manual over every
    /// mesh axis; values computed from the result up to a [`Op::ShardToFull`] are per-device
    /// values (see [`crate::manual`]). Operands: `x`.
    FullToShard { dims: Vec<Vec<String>> },
    /// Leaves a manual region (`SPMDShardToFullShape`): the whole value whose block on each
    /// device is that device's `x`, dim `d` split over `dims[d]`; over axes no dim names, the
    /// device at coordinate 0 gives the block. Operands: `x` (a per-device value).
    ShardToFull { dims: Vec<Vec<String>> },
}

impl Op {
    /// The op's name as written in the graph format and the text dump.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Input { .. } => "input",
            Op::Constant { .. } => "constant",
            Op::Iota { .. } => "iota",
            Op::Unary { func } => func.name(),
            Op::Binary { func } => func.name(),
            Op::Compare { .. } => "compare",
            Op::Select => "select",
            Op::Convert => "convert",
            Op::Copy => "copy",
            Op::DotGeneral { .. } => "dot_general",
            Op::Reduce { .. } => "reduce",
            Op::Broadcast { .. } => "broadcast",
            Op::Reshape => "reshape",
            Op::Transpose { .. } => "transpose",
            Op::Reverse { .. } => "reverse",
            Op::Slice { .. } => "slice",
            Op::Concatenate { .. } => "concatenate",
            Op::Pad { .. } => "pad",
            Op::Convolution(_) => "convolution",
            Op::Gather { .. } => "gather",
            Op::ScatterAdd { .. } => "scatter_add",
            Op::GeneralGather(_) => "general_gather",
            Op::GeneralScatter { .. } => "general_scatter",
            Op::Sort { .. } => "sort",
            Op::BitcastConvert => "bitcast_convert",
            Op::ReduceWindow { .. } => "reduce_window",
            Op::SelectAndScatter { .. } => "select_and_scatter",
            Op::DynamicSlice { .. } => "dynamic_slice",
            Op::DynamicUpdateSlice => "dynamic_update_slice",
            Op::AxisIndex { .. } => "axis_index",
            Op::AllReduce { .. } => "all_reduce",
            Op::AllGather { .. } => "all_gather",
            Op::ReduceScatter { .. } => "reduce_scatter",
            Op::AllToAll { .. } => "all_to_all",
            Op::CollectivePermute { .. } => "collective_permute",
            Op::Send { .. } => "send",
            Op::Recv { .. } => "recv",
            Op::FullToShard { .. } => "full_to_shard",
            Op::ShardToFull { .. } => "shard_to_full",
        }
    }

    /// Whether this op moves data between devices.
    pub fn is_collective(&self) -> bool {
        matches!(
            self,
            Op::AllReduce { .. }
                | Op::AllGather { .. }
                | Op::ReduceScatter { .. }
                | Op::AllToAll { .. }
                | Op::CollectivePermute { .. }
                | Op::Send { .. }
                | Op::Recv { .. }
        )
    }

    /// The mesh axes a collective runs over (empty for other ops).
    pub fn collective_axes(&self) -> Vec<String> {
        match self {
            Op::AllReduce { axes, .. }
            | Op::AllGather { axes, .. }
            | Op::ReduceScatter { axes, .. }
            | Op::AllToAll { axes, .. } => axes.clone(),
            Op::CollectivePermute { axes, .. } => axes.clone(),
            _ => Vec::new(),
        }
    }

    /// Ops that take no operands and are fixed by the node's declared type.
    pub fn is_source(&self) -> bool {
        matches!(
            self,
            Op::Input { .. }
                | Op::Constant { .. }
                | Op::Iota { .. }
                | Op::AxisIndex { .. }
                | Op::Recv { .. }
        )
    }
}

/// One axis name or a list of them (a collective-permute's axes were once a single `axis`).
fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(a) => vec![a],
        OneOrMany::Many(v) => v,
    })
}
