//! The StableHLO text importer: what `jax.jit(f).lower(...).as_text()` prints.
//!
//! [`import`] reads a StableHLO module (`func.func`s of `stablehlo.*`/`chlo.*` ops, with
//! Shardy's `sdy.mesh` and `sdy.sharding` or GSPMD's `mhlo.sharding` attributes) by converting
//! each op into the HLO instruction XLA's own translation gives it and lowering that module as
//! the HLO importer does ([`crate::hlo`]). With Shardy shardings the graph's mesh is the
//! module's `sdy.mesh`, with the user's axis names, and each sharding an annotation on it
//! (`?` dims open).
//!
//! ```
//! let text = r#"module @m attributes {mhlo.num_partitions = 8 : i32} {
//!   sdy.mesh @mesh = <["dp"=2, "tp"=4]>
//!   func.func public @main(%arg0: tensor<8x4xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"dp"}, {}]>}) -> tensor<8x4xf32> {
//!     %0 = stablehlo.negate %arg0 : tensor<8x4xf32>
//!     return %0 : tensor<8x4xf32>
//!   }
//! }"#;
//! let imp = shardc_ir::stablehlo::import(text).unwrap();
//! assert_eq!(imp.graph.mesh.as_ref().unwrap().to_string(), "dp=2,tp=4");
//! assert_eq!(imp.graph.annotations[0].sharding.to_jax().unwrap(), "P('dp', None)");
//! ```

mod convert;
mod literal;
mod manual;
mod ops;
mod parse;
mod types;

use crate::error::IrError;
use crate::hlo::{finish_manual, import_unresolved, parse_module, HloImport};
use crate::mesh::Mesh;
use crate::sharding::{Annotation, HloSharding};

use convert::Converter;
use parse::{find_top, matching, short, split_top, statements};

/// Whether `text` looks like StableHLO/MLIR (a `module` or a `func.func`).
pub fn looks_like(text: &str) -> bool {
    let t = text.trim_start();
    t.starts_with("module") || t.starts_with("func.func") || t.starts_with("#loc")
}

/// Imports StableHLO text. Unsupported ops give an error naming the line and op.
pub fn import(text: &str) -> Result<HloImport, IrError> {
    let (hlo, conv) = to_hlo(text)?;
    let mut module = parse_module(&hlo)
        .map_err(|e| IrError::Format(format!("StableHLO converted to HLO does not parse: {e}")))?;
    // Errors from the lowering name the StableHLO line, not the converted text's.
    if let Some(entry) = module.computations.iter_mut().find(|c| c.entry) {
        for inst in &mut entry.instructions {
            if let Some(&l) = conv.lines.get(&inst.name) {
                inst.line = l;
            }
        }
    }
    let (mut imp, fixups) = import_unresolved(module)?;
    if !conv.sdy.is_empty() {
        shardy_annotations(&mut imp, &conv)?;
    }
    finish_manual(&mut imp, &fixups)?;
    Ok(imp)
}

/// The HLO module text of a StableHLO module, with what the conversion learned.
fn to_hlo(text: &str) -> Result<(String, Converter), IrError> {
    let err = IrError::Format;
    let t = text.trim();
    let (name, attrs, body, body_line) = if t.starts_with("module") {
        let open = find_top(t, "{\n")
            .or_else(|| last_block_open(t))
            .ok_or_else(|| err("StableHLO: `module` without a body".into()))?;
        let head = &t[..open];
        let close = matching(t, open).ok_or_else(|| err("StableHLO: unbalanced module".into()))?;
        let name = head
            .split_whitespace()
            .nth(1)
            .filter(|n| n.starts_with('@'))
            .map_or("stablehlo", |n| n.trim_start_matches('@'))
            .to_string();
        let attrs = head.find("attributes {").map_or("", |i| &head[i + 12..]);
        let line = 1 + t[..open].matches('\n').count();
        (name, attrs, &t[open + 1..close], line)
    } else {
        ("stablehlo".to_string(), "", t, 1)
    };
    let partitions = parse::dict_get(
        attrs.trim_end().trim_end_matches('}'),
        "mhlo.num_partitions",
    )
    .and_then(|v| v.split(':').next())
    .and_then(|v| v.trim().parse::<u64>().ok())
    .unwrap_or(1);
    let mut conv = Converter::default();
    let mut seen_main = false;
    for (line, s) in statements(body, body_line).map_err(err)? {
        let s = s.trim();
        if let Some(r) = s.strip_prefix("sdy.mesh") {
            let (n, m) = mesh(r).map_err(|e| err(format!("line {line}: {e}")))?;
            conv.meshes.insert(n, m);
        } else if let Some(r) = s.strip_prefix("func.func") {
            seen_main |= r.contains("@main(");
            conv.function(r, line).map_err(err)?;
        } else if s.starts_with("#loc") || s.starts_with("//") {
            continue;
        } else {
            return Err(err(format!(
                "line {line}: expected `func.func` or `sdy.mesh`, got `{}`",
                short(s)
            )));
        }
    }
    if !seen_main {
        return Err(err("StableHLO: the module has no `func.func @main`".into()));
    }
    let mut hlo = format!("HloModule {name}, num_partitions={partitions}\n\n");
    for c in &conv.comps {
        hlo += c;
        hlo.push('\n');
    }
    Ok((hlo, conv))
}

/// The last `{` at depth 0 of a module header ending in its body.
fn last_block_open(t: &str) -> Option<usize> {
    let d = parse::Depths::new(t);
    t.char_indices()
        .filter(|&(i, c)| c == '{' && d.at(i) == 0)
        .map(|(i, _)| i)
        .last()
}

/// `@mesh = <["dp"=2, "tp"=4]>` (device ids, if given, must be the identity order).
fn mesh(r: &str) -> Result<(String, Mesh), String> {
    let (n, m) = r.split_once('=').ok_or("expected `@name = <[..]>`")?;
    let name = n.trim().trim_start_matches('@').to_string();
    let m = m.trim();
    let open = m.find("<[").ok_or("expected `<[\"axis\"=N, ..]>`")?;
    let close = matching(m, open + 1).ok_or("unbalanced mesh")?;
    let mut axes = Vec::new();
    for a in split_top(&m[open + 2..close], ',') {
        let a = a.trim();
        if a.is_empty() {
            continue;
        }
        let (k, v) = a
            .split_once('=')
            .ok_or_else(|| format!("mesh axis `{a}`: expected \"name\"=size"))?;
        let size: u64 = v
            .trim()
            .parse()
            .map_err(|_| format!("mesh axis `{a}`: bad size"))?;
        axes.push((k.trim().trim_matches('"').to_string(), size));
    }
    let rest = &m[close + 1..];
    if let Some(i) = rest.find("device_ids") {
        let ids = parse::ints(
            rest[i + 10..]
                .trim_start_matches([' ', '='])
                .split(']')
                .next()
                .unwrap_or("")
                .trim_start_matches('['),
        )?;
        if ids.iter().enumerate().any(|(k, &d)| d != k as i64) {
            return Err("a mesh with reordered device_ids is unsupported".into());
        }
    }
    if axes.is_empty() {
        return Err(format!(
            "mesh `{name}` has no axes (a maximal sharding is unsupported)"
        ));
    }
    let refs: Vec<(&str, u64)> = axes.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    Ok((name, Mesh::new(&refs).map_err(|e| e.to_string())?))
}

/// Shardy shardings become the graph's annotations on the module's one mesh.
fn shardy_annotations(imp: &mut HloImport, conv: &Converter) -> Result<(), IrError> {
    let names: std::collections::BTreeSet<&str> =
        conv.sdy.iter().map(|(_, t)| t.mesh.as_str()).collect();
    let [mesh_name] = names.into_iter().collect::<Vec<_>>()[..] else {
        return Err(IrError::Format(
            "StableHLO: shardings on more than one mesh are unsupported".into(),
        ));
    };
    let mesh = conv
        .meshes
        .get(mesh_name)
        .ok_or_else(|| IrError::Format(format!("StableHLO: mesh `@{mesh_name}` is not defined")))?
        .clone();
    imp.graph.annotations.clear();
    imp.notes.clear();
    for (inst, t) in &conv.sdy {
        let Some(v) = imp.value(inst) else {
            imp.notes.push(format!(
                "`{inst}`: a tuple-shaped value's sharding is not kept"
            ));
            continue;
        };
        let graph = &mut imp.graph;
        let node = &graph.nodes[v.index()];
        t.sharding
            .validate(&mesh, node.ty.rank())
            .map_err(|e| IrError::Format(format!("StableHLO: the sharding of `%{inst}`: {e}")))?;
        imp.shardings[v.index()] = HloSharding::from_sharding(&t.sharding, &mesh).ok();
        let value = node.name.clone();
        graph.annotations.retain(|a| a.value != value);
        graph.annotations.push(Annotation {
            value,
            sharding: t.sharding.clone(),
            priority: 0,
        });
    }
    imp.graph.mesh = Some(mesh);
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_module_converts_to_the_hlo_xla_would_print() {
        let text = r#"module @jit_f attributes {mhlo.num_partitions = 8 : i32, mhlo.num_replicas = 1 : i32} {
  func.func public @main(%arg0: tensor<8x16xf32> {mhlo.sharding = "{devices=[2,1,4]<=[8] last_tile_dim_replicate}"}) -> (tensor<8xf32> {jax.result_info = "result"}) {
    %cst = stablehlo.constant dense<0.000000e+00> : tensor<f32>
    %0 = stablehlo.reduce(%arg0 init: %cst) applies stablehlo.add across dimensions = [1] : (tensor<8x16xf32>, tensor<f32>) -> tensor<8xf32>
    return %0 : tensor<8xf32>
  }
}"#;
        let (hlo, _) = super::to_hlo(text).unwrap();
        assert!(
            hlo.starts_with("HloModule jit_f, num_partitions=8"),
            "{hlo}"
        );
        assert!(
            hlo.contains("ROOT v0 = f32[8] reduce(arg0, cst), dimensions={1}, to_apply=region_1"),
            "{hlo}"
        );
        let imp = super::import(text).unwrap();
        assert_eq!(imp.graph.mesh.as_ref().unwrap().to_string(), "x0=2,x1=4");
    }

    #[test]
    fn unsupported_ops_name_their_line() {
        let text = "func.func @main(%arg0: tensor<4xf32>) -> tensor<4xf32> {\n  %0 = stablehlo.fft %arg0 : tensor<4xf32>\n  return %0 : tensor<4xf32>\n}";
        let e = super::import(text).unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("stablehlo.fft"), "{e}");
    }
}
