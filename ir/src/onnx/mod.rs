//! ONNX import: a `ModelProto` (as PyTorch's exporters write it) becomes an [`crate::Graph`].
//!
//! The protobuf is decoded in pure Rust (`prost`, with the code generated from the vendored
//! `onnx.proto` committed as `proto.rs`), so building needs no `protoc`. Every node is added
//! through [`crate::Graph::push`], so the result type-checks as it is built.
//!
//! - Graph inputs become `input` nodes of role `input`, named as in the model; dynamic dims are
//!   fixed by [`OnnxOptions::dims`] (`--dim batch=2`), and a dim left open is an error naming it.
//! - Float initializers become parameters (role `parameter`), named by the initializer's name
//!   (PyTorch's exporters use the module paths, `model.layers.0.self_attn.q_proj.weight`); their
//!   values come back in [`OnnxModel::params`]. Weights in external data files are read from next
//!   to the model (absolute paths and `..` are refused). Integer and scalar initializers are
//!   constants known at import time.
//! - `Shape`, and the integer arithmetic exporters build on it (`Gather`, `Concat`, `Slice`,
//!   `Range`, ...), are folded statically: a value computed only from constants and shapes is a
//!   constant, which is what `Reshape`'s target shape, `Slice`'s starts and the like must be.
//! - Operators the importer does not know are collected first: one error lists all of them, with
//!   how many nodes use each.
//!
//! Supported: opset 13 and later of the default domain (older models are read when their nodes
//! have the opset-13 form). Each operator's lowering is in `ops_*.rs`, as compositions of `ir`'s
//! op set.

mod attrs;
mod build;
mod fold;
mod host;
mod ops_math;
mod ops_nn;
mod ops_shape;
#[allow(missing_docs, clippy::all)]
mod proto;
mod tensor;

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use prost::Message;

use crate::error::{IrError, Result};
use crate::graph::Graph;
use crate::types::TensorType;

pub use build::SUPPORTED_OPS;

/// How to import: values for the model's dynamic dims.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OnnxOptions {
    /// Sizes of symbolic dims by name (`batch` → 2); `--dim name=value` on the command line.
    pub dims: BTreeMap<String, u64>,
}

impl OnnxOptions {
    /// Options with the dims given as `name=value` strings (the CLI's `--dim`).
    pub fn with_dims<S: AsRef<str>>(dims: &[S]) -> Result<Self> {
        let mut o = OnnxOptions::default();
        for d in dims {
            let d = d.as_ref();
            let bad = || IrError::parse("--dim", d, "expected NAME=SIZE, e.g. batch=2");
            let (name, value) = d.split_once('=').ok_or_else(bad)?;
            let value: u64 = value.trim().parse().map_err(|_| bad())?;
            o.dims.insert(name.trim().to_string(), value);
        }
        Ok(o)
    }
}

/// A parameter's value, as stored in the model (row-major).
#[derive(Clone, Debug, PartialEq)]
pub struct ParamValue {
    /// The parameter's node name (the initializer's name).
    pub name: String,
    /// Its type in the graph (bf16/f16 values are held as f32 in `data`).
    pub ty: TensorType,
    /// The elements.
    pub data: ArrayData,
}

/// Elements of one array, in the storage type that holds them exactly.
#[derive(Clone, Debug, PartialEq)]
pub enum ArrayData {
    /// f32, and bf16/f16 widened to f32.
    F32(Vec<f32>),
    /// f64.
    F64(Vec<f64>),
    /// Every integer type.
    I64(Vec<i64>),
    /// bool.
    Bool(Vec<bool>),
}

impl ArrayData {
    /// The elements as f64 (integers beyond 2^53 round).
    pub fn to_f64_vec(&self) -> Vec<f64> {
        match self {
            ArrayData::F32(v) => v.iter().map(|&x| x as f64).collect(),
            ArrayData::F64(v) => v.clone(),
            ArrayData::I64(v) => v.iter().map(|&x| x as f64).collect(),
            ArrayData::Bool(v) => v.iter().map(|&x| f64::from(u8::from(x))).collect(),
        }
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        match self {
            ArrayData::F32(v) => v.len(),
            ArrayData::F64(v) => v.len(),
            ArrayData::I64(v) => v.len(),
            ArrayData::Bool(v) => v.len(),
        }
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// An imported model: the graph and the values of its parameters.
#[derive(Clone, Debug)]
pub struct OnnxModel {
    /// The graph (verified).
    pub graph: Graph,
    /// One value per parameter node, in graph order.
    pub params: Vec<ParamValue>,
    /// The default domain's opset the model declares.
    pub opset: i64,
    /// `producer_name producer_version` of the model (e.g. `pytorch 2.9.0`).
    pub producer: String,
}

/// Reads an ONNX model file; external data files are resolved next to it.
pub fn import(path: &Path, opts: &OnnxOptions) -> Result<OnnxModel> {
    let bytes = std::fs::read(path)
        .map_err(|e| IrError::Format(format!("cannot read {}: {e}", path.display())))?;
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    import_bytes(&bytes, Some(&dir), opts)
}

/// Reads an ONNX model from its bytes. `dir` is where external data files are looked for;
/// without it, a model with external data is an error.
pub fn import_bytes(bytes: &[u8], dir: Option<&Path>, opts: &OnnxOptions) -> Result<OnnxModel> {
    let model = proto::ModelProto::decode(bytes)
        .map_err(|e| IrError::Format(format!("not an ONNX model (protobuf ModelProto): {e}")))?;
    let opset = model
        .opset_import
        .iter()
        .find(|o| matches!(o.domain.as_deref(), None | Some("") | Some("ai.onnx")))
        .and_then(|o| o.version)
        .unwrap_or(0);
    let graph_proto = model
        .graph
        .as_ref()
        .ok_or_else(|| IrError::Format("the ONNX model has no graph".into()))?;
    let producer = format!(
        "{} {}",
        model.producer_name.as_deref().unwrap_or(""),
        model.producer_version.as_deref().unwrap_or("")
    )
    .trim()
    .to_string();
    let data = ExternalData { dir: dir.map(Path::to_path_buf) };
    let (graph, params) = build::import_graph(graph_proto, &model.functions, opset, &data, opts)?;
    crate::verify(&graph)?;
    Ok(OnnxModel { graph, params, opset, producer })
}

/// Where external data files are read from.
pub(crate) struct ExternalData {
    dir: Option<PathBuf>,
}

impl ExternalData {
    /// The bytes `[offset, offset + length)` of the external file `location` (relative to the
    /// model's folder; absolute paths and `..` are refused, as onnx's checker does).
    pub(crate) fn read(&self, tensor: &str, location: &str, offset: u64, length: Option<u64>) -> Result<Vec<u8>> {
        let err = |m: String| IrError::Format(format!("initializer `{tensor}`: external data `{location}`: {m}"));
        let rel = Path::new(location);
        if rel.is_absolute() || rel.components().any(|c| !matches!(c, Component::Normal(_) | Component::CurDir)) {
            return Err(err("must be a path relative to the model's folder, without `..`".into()));
        }
        let dir = self.dir.as_ref().ok_or_else(|| err("the model was given as bytes, with no folder to read external data from".into()))?;
        let path = dir.join(rel);
        use std::io::{Read, Seek, SeekFrom};
        let mut f = std::fs::File::open(&path).map_err(|e| err(format!("cannot open {}: {e}", path.display())))?;
        let size = f.metadata().map_err(|e| err(e.to_string()))?.len();
        let length = length.unwrap_or(size.saturating_sub(offset));
        if offset.checked_add(length).map_or(true, |end| end > size) {
            return Err(err(format!("bytes {offset}..+{length} are past the end of the file ({size} bytes)")));
        }
        f.seek(SeekFrom::Start(offset)).map_err(|e| err(e.to_string()))?;
        let mut buf = vec![0u8; length as usize];
        f.read_exact(&mut buf).map_err(|e| err(e.to_string()))?;
        Ok(buf)
    }
}
