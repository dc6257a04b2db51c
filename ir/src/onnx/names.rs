//! The PyTorch parameters behind the initializers the exporters made themselves.
//!
//! Both of torch's exporters fold the transpose of an `nn.Linear` weight (`[out, in]`, used as
//! `x @ W.T`) into a new initializer `W.T` for ONNX's `MatMul`, named as the exporter likes
//! (`val_110` by the dynamo exporter, `onnx::MatMul_591` by the TorchScript one) rather than by
//! the module path. The importer names such an initializer's parameter by the module path
//! (`model.layers.0.self_attn.q_proj.weight`) with PyTorch's own layout and transposes it in
//! the graph, so plans, exports and `--inputs` speak of the user's parameters.
//!
//! Where the module comes from:
//! - the dynamo exporter records on each node the FX node it lowers (`pkg.torch.onnx.fx_node`:
//!   `aten.linear.default(args = (%x, %p_model_layers_0_self_attn_q_proj_weight))`) and the
//!   module scopes it ran in (`pkg.torch.onnx.name_scopes`: `['', 'model', ...,
//!   'model.layers.0.self_attn.q_proj', 'linear']`); the innermost module is taken when the FX
//!   node's arguments name its `weight` parameter (`p_` and the path with `_` for `.`);
//! - the TorchScript exporter names nodes by their module scopes
//!   (`/model/layers.0/self_attn/q_proj/MatMul`) and the folded initializer `onnx::MatMul_N`.
//!
//! Only exact transposes are renamed. Initializers that fold in more than a transpose (the
//! TorchScript exporter folds inference-mode batch normalization into the convolution's
//! weight and bias: `onnx::Conv_N`) keep their ONNX names, since no PyTorch parameter has
//! their values.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::proto::{GraphProto, NodeProto};

/// Initializer name → the PyTorch parameter (`MODULE.weight`) it is the transpose of.
pub(crate) fn transposed_parameters(gp: &GraphProto) -> BTreeMap<String, String> {
    let inits: HashSet<&str> = gp.initializer.iter().map(|t| t.name()).collect();
    let mut uses: HashMap<&str, usize> = HashMap::new();
    for n in &gp.node {
        for i in &n.input {
            *uses.entry(i.as_str()).or_default() += 1;
        }
    }
    let rank2: HashSet<&str> = gp
        .initializer
        .iter()
        .filter(|t| t.dims.len() == 2)
        .map(|t| t.name())
        .collect();
    let mut out = BTreeMap::new();
    let mut taken: HashSet<String> = HashSet::new();
    for n in gp.node.iter().filter(|n| n.op_type() == "MatMul") {
        let Some(w) = n.input.get(1).map(String::as_str) else {
            continue;
        };
        if !rank2.contains(w) || uses.get(w) != Some(&1) {
            continue;
        }
        let Some(module) = dynamo_linear_module(n).or_else(|| torchscript_module(n, w)) else {
            continue;
        };
        let source = format!("{module}.weight");
        // A name already in the model (or given to another initializer) stays with it.
        if inits.contains(source.as_str()) || !taken.insert(source.clone()) {
            continue;
        }
        out.insert(w.to_string(), source);
    }
    out
}

fn metadata<'a>(n: &'a NodeProto, key: &str) -> Option<&'a str> {
    n.metadata_props
        .iter()
        .find(|p| p.key() == key)
        .map(|p| p.value())
}

/// The dynamo exporter's `aten.linear` node: the innermost module scope, when the FX node's
/// arguments name that module's `weight` parameter.
fn dynamo_linear_module(n: &NodeProto) -> Option<String> {
    let fx = metadata(n, "pkg.torch.onnx.fx_node")?;
    if !fx.contains("target=torch.ops.aten.linear.") {
        return None;
    }
    let scopes = python_str_list(metadata(n, "pkg.torch.onnx.name_scopes")?);
    // The last scope is the FX node itself; the one before it the module that ran it.
    let module = scopes.len().checked_sub(2).map(|i| scopes[i].clone())?;
    if module.is_empty() {
        return None;
    }
    let arg = format!("%p_{}_weight", module.replace('.', "_"));
    let named = fx
        .split([',', '(', ')', ' '])
        .any(|tok| tok == arg.as_str());
    named.then_some(module)
}

/// The TorchScript exporter's `/a/b.0/c/MatMul` with its folded `onnx::MatMul_N` weight: `a.b.0.c`.
fn torchscript_module(n: &NodeProto, w: &str) -> Option<String> {
    if !w.starts_with("onnx::MatMul_") {
        return None;
    }
    let path = n.name().strip_prefix('/')?;
    let (module, last) = path.rsplit_once('/')?;
    if !last.starts_with("MatMul") || module.is_empty() {
        return None;
    }
    Some(module.replace('/', "."))
}

/// `['', 'model', 'model.layers.0']` (a Python list of plain strings) as its elements.
fn python_str_list(s: &str) -> Vec<String> {
    let inner = s.trim().trim_start_matches('[').trim_end_matches(']');
    if inner.trim().is_empty() {
        return Vec::new();
    }
    inner
        .split(',')
        .map(|e| e.trim().trim_matches(|c| c == '\'' || c == '"').to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onnx::proto::StringStringEntryProto;

    fn entry(k: &str, v: &str) -> StringStringEntryProto {
        StringStringEntryProto {
            key: Some(k.into()),
            value: Some(v.into()),
        }
    }

    #[test]
    fn the_dynamo_exporters_linear_names_its_modules_weight() {
        let n = NodeProto {
            op_type: Some("MatMul".into()),
            metadata_props: vec![
                entry(
                    "pkg.torch.onnx.fx_node",
                    "%linear : [num_users=1] = call_function[target=torch.ops.aten.linear.default](args = (%mul_4, %p_model_layers_0_self_attn_q_proj_weight), kwargs = {})",
                ),
                entry(
                    "pkg.torch.onnx.name_scopes",
                    "['', 'model', 'model.layers.0', 'model.layers.0.self_attn', 'model.layers.0.self_attn.q_proj', 'linear']",
                ),
            ],
            ..Default::default()
        };
        assert_eq!(
            dynamo_linear_module(&n).as_deref(),
            Some("model.layers.0.self_attn.q_proj")
        );
        // Scopes that do not match the parameter the FX node reads name nothing.
        let mut other = n.clone();
        other.metadata_props[1] = entry("pkg.torch.onnx.name_scopes", "['', 'model', 'linear']");
        assert_eq!(dynamo_linear_module(&other), None);
    }

    #[test]
    fn the_torchscript_exporters_scopes_name_the_module() {
        let n = NodeProto {
            op_type: Some("MatMul".into()),
            name: Some("/model/layers.0/mlp/down_proj/MatMul".into()),
            ..Default::default()
        };
        assert_eq!(
            torchscript_module(&n, "onnx::MatMul_667").as_deref(),
            Some("model.layers.0.mlp.down_proj")
        );
        assert_eq!(torchscript_module(&n, "model.embed.weight"), None);
    }
}
