//! `sdy.manual_computation` (jax's `shard_map`) and the collectives inside it, written as the
//! HLO XLA's translation gives them: a `Sharding` custom-call and an `SPMDFullToShardShape`
//! per operand, the body inlined, an `SPMDShardToFullShape` per result (see `crate::manual`).

use crate::sharding::ShardyText;

use super::convert::{hname, result_names, Comp, Converter};
use super::ops::{prop, props, regions};
use super::parse::{matching, split_top, Statement};
use super::types::TensorTy;

/// The `[..]` list after `key=` in `text`, split at its top-level commas.
fn bracket_list<'a>(text: &'a str, key: &str) -> Result<Vec<&'a str>, String> {
    let at = text
        .find(key)
        .ok_or_else(|| format!("expected `{key}[..]`"))?;
    let open = at + key.len() - 1;
    let close = matching(text, open).ok_or_else(|| format!("`{key}`: unbalanced brackets"))?;
    Ok(split_top(&text[open + 1..close], ',')
        .into_iter()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect())
}

/// `sdy.manual_computation(%a, %b) in_shardings=[..] out_shardings=[..] manual_axes={..}
/// (%x: T, %y: U) { .. sdy.return .. } : (..) -> ..`.
pub(crate) fn manual_computation(
    c: &mut Converter,
    comp: &mut Comp,
    st: &Statement,
    res: &[TensorTy],
) -> Result<(), String> {
    let b = st.body;
    let open = b.find('(').ok_or("expected the operands `(%a, ..)`")?;
    let close = matching(b, open).ok_or("unbalanced operand list")?;
    let operands: Vec<String> = split_top(&b[open + 1..close], ',')
        .into_iter()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|o| comp.resolve(hname(o)))
        .collect();
    let parse = |s: &str| ShardyText::parse(s).map_err(|e| e.to_string());
    let ins: Vec<ShardyText> = bracket_list(b, "in_shardings=[")?
        .into_iter()
        .map(parse)
        .collect::<Result<_, _>>()?;
    let outs: Vec<ShardyText> = bracket_list(b, "out_shardings=[")?
        .into_iter()
        .map(parse)
        .collect::<Result<_, _>>()?;
    let axes_at = b
        .find("manual_axes={")
        .ok_or("expected `manual_axes={..}`")?;
    let axes_open = axes_at + "manual_axes=".len();
    let axes_close = matching(b, axes_open).ok_or("unbalanced manual_axes")?;
    let manual: Vec<String> = split_top(&b[axes_open + 1..axes_close], ',')
        .into_iter()
        .map(|a| a.trim().trim_matches('"').to_string())
        .filter(|a| !a.is_empty())
        .collect();
    // Block arguments, then the body.
    let rest = &b[axes_close + 1..];
    let args_open = rest.find('(').ok_or("expected the body's arguments")?;
    let args_close = matching(rest, args_open).ok_or("unbalanced body arguments")?;
    let mut args = Vec::new();
    for a in split_top(&rest[args_open + 1..args_close], ',') {
        let (n, t) = a.split_once(':').ok_or("a body argument without a type")?;
        args.push((hname(n.trim()), TensorTy::parse(t.trim())?));
    }
    let after = &rest[args_close + 1..];
    let body_open = after
        .find('{')
        .ok_or("the manual computation has no body")?;
    let body_close = matching(after, body_open).ok_or("unbalanced body")?;
    let body = &after[body_open + 1..body_close];
    let body_line = st.line
        + b[..axes_close + 1 + args_close + 1 + body_open]
            .matches('\n')
            .count();
    if ins.len() != operands.len() || args.len() != operands.len() {
        return Err(format!(
            "{} operands, {} in_shardings, {} body arguments",
            operands.len(),
            ins.len(),
            args.len()
        ));
    }
    let mesh_name = ins.iter().chain(&outs).map(|t| t.mesh.clone()).next();
    if let Some(m) = mesh_name.as_ref().and_then(|m| c.meshes.get(m)) {
        let all: Vec<&str> = m.axis_names();
        if manual.len() != all.len() || all.iter().any(|a| !manual.iter().any(|m| m == a)) {
            return Err(format!(
                "manual_axes {{{}}} are not every axis of mesh {m}: a region manual over some \
                 axes only (shard_map with auto axes) is unsupported",
                manual.join(", ")
            ));
        }
    }
    for (i, ((x, sharding), (arg, ty))) in operands.iter().zip(ins).zip(&args).enumerate() {
        let whole = format!(
            "{}.in{i}",
            hname(&st.results.first().cloned().unwrap_or_default())
        );
        let whole_ty = comp_type(comp, x).ok_or_else(|| format!("operand `{x}` has no type"))?;
        c.emit_helper(
            comp,
            &whole,
            whole_ty,
            format!("custom-call({x}), custom_call_target=\"Sharding\""),
        );
        c.shard_value(comp, &whole, sharding);
        c.emit_sharded(
            comp,
            arg,
            ty.hlo(),
            format!("custom-call({whole}), custom_call_target=\"SPMDFullToShardShape\""),
            "{manual}",
            st.line,
        );
    }
    let returned = c.block(comp, body, body_line)?;
    let names = result_names(st);
    if returned.len() != names.len() || outs.len() != names.len() || res.len() != names.len() {
        return Err(format!(
            "{} results, {} returned by the body, {} out_shardings, {} result types",
            names.len(),
            returned.len(),
            outs.len(),
            res.len()
        ));
    }
    for ((name, (r, _)), (sharding, ty)) in
        names.iter().zip(&returned).zip(outs.into_iter().zip(res))
    {
        c.emit_sharded(
            comp,
            name,
            ty.hlo(),
            format!("custom-call({r}), custom_call_target=\"SPMDShardToFullShape\""),
            "{replicated}",
            st.line,
        );
        c.shard_value(comp, name, sharding);
    }
    Ok(())
}

/// The HLO type text of instruction `name` of `comp`.
fn comp_type(comp: &Comp, name: &str) -> Option<String> {
    comp.type_of(name)
}

/// `dense<[[0, 1], [2, 3]]> : tensor<2x2xi64>` as HLO's `{{0,1},{2,3}}`.
fn dense_groups(v: &str) -> Result<String, String> {
    let v = v.trim();
    let inner = v
        .strip_prefix("dense<")
        .and_then(|r| r.find('>').map(|e| &r[..e]))
        .ok_or_else(|| format!("expected `dense<[[..]]>`, got `{v}`"))?;
    let t: String = inner
        .chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| match c {
            '[' => '{',
            ']' => '}',
            c => c,
        })
        .collect();
    if t.is_empty() {
        return Ok("{}".into());
    }
    if !t.starts_with("{{") {
        return Err(format!("expected a list of device lists, got `{inner}`"));
    }
    Ok(t)
}

/// An integer property `key = N : i64`.
fn int_prop(p: &str, key: &str) -> Result<i64, String> {
    prop(p, key)
        .and_then(|v| v.split(':').next())
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| format!("expected `{key} = N`"))
}

/// A collective with `replica_groups` (or `source_target_pairs`), as its HLO instruction.
pub(crate) fn collective(c: &mut Converter, st: &Statement, args: &str) -> Result<String, String> {
    let p = props(st);
    let groups = || -> Result<String, String> {
        dense_groups(prop(p, "replica_groups").unwrap_or("dense<>"))
    };
    let reducer = |c: &mut Converter| -> Result<String, String> {
        let r = regions(st);
        let (text, line) = r.first().ok_or("the collective has no reduction region")?;
        c.emit_region(text, *line)
    };
    Ok(match st.name {
        "stablehlo.all_reduce" => {
            let f = reducer(c)?;
            format!(
                "all-reduce({args}), replica_groups={}, to_apply={f}",
                groups()?
            )
        }
        "stablehlo.reduce_scatter" => {
            let d = int_prop(p, "scatter_dimension")?;
            let f = reducer(c)?;
            format!(
                "reduce-scatter({args}), dimensions={{{d}}}, replica_groups={}, to_apply={f}",
                groups()?
            )
        }
        "stablehlo.all_gather" => {
            let d = int_prop(p, "all_gather_dim")?;
            format!(
                "all-gather({args}), dimensions={{{d}}}, replica_groups={}",
                groups()?
            )
        }
        "stablehlo.all_to_all" => {
            let s = int_prop(p, "split_dimension")?;
            let k = int_prop(p, "concat_dimension")?;
            // HLO's array all-to-all splits and concatenates one dim; StableHLO's two may
            // differ, which the importer reads from `concat_dimension`.
            format!(
                "all-to-all({args}), dimensions={{{s}}}, concat_dimension={k}, replica_groups={}",
                groups()?
            )
        }
        "stablehlo.collective_permute" => {
            let pairs = dense_groups(prop(p, "source_target_pairs").unwrap_or("dense<>"))?;
            format!("collective-permute({args}), source_target_pairs={pairs}")
        }
        _ => return Err(format!("`{}` is not a collective", st.name)),
    })
}
