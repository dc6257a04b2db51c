//! StableHLO functions and regions → HLO computations (text), op by op. Each op becomes the
//! HLO instruction XLA's own translation gives it, so the HLO lowering does the rest.

use std::collections::BTreeMap;

use crate::mesh::Mesh;
use crate::sharding::ShardyText;

use super::literal::literal;
use super::parse::{
    dict_get, find_top, ints, matching, operand_names, short, split_top, statements, Statement,
};
use super::types::{hlo_types, type_list, TensorTy};

/// One HLO instruction being written.
struct Inst {
    name: String,
    ty: String,
    op: String,
    sharding: Option<String>,
    root: bool,
}

/// One HLO computation being written.
#[derive(Default)]
pub(crate) struct Comp {
    insts: Vec<Inst>,
    /// Values that are another value (an identity broadcast or reshape, which XLA's
    /// translation drops too), by HLO name.
    alias: BTreeMap<String, String>,
}

impl Comp {
    fn push(&mut self, name: &str, ty: String, op: String) {
        self.alias.remove(name);
        self.insts.push(Inst {
            name: name.to_string(),
            ty,
            op,
            sharding: None,
            root: false,
        });
    }

    fn set_sharding(&mut self, name: &str, s: String) {
        if let Some(i) = self.insts.iter_mut().rev().find(|i| i.name == name) {
            i.sharding = Some(s);
        }
    }

    /// The HLO type text of instruction `name`, if the computation defines it.
    pub(crate) fn type_of(&self, name: &str) -> Option<String> {
        self.insts
            .iter()
            .rev()
            .find(|i| i.name == name)
            .map(|i| i.ty.clone())
    }

    /// The value `name` stands for.
    pub(crate) fn resolve(&self, name: String) -> String {
        match self.alias.get(&name) {
            Some(a) => a.clone(),
            None => name,
        }
    }

    /// Makes `name` stand for `target`.
    pub(crate) fn set_alias(&mut self, name: String, target: String) {
        let target = self.resolve(target);
        self.alias.insert(name, target);
    }

    /// Marks the instruction `name` the computation's root.
    fn root(&mut self, name: &str) -> Result<(), String> {
        match self.insts.iter_mut().rev().find(|i| i.name == name) {
            Some(i) => {
                i.root = true;
                Ok(())
            }
            None => Err(format!(
                "`%{name}` is returned but not defined in this region (values captured from an \
                 enclosing region are unsupported)"
            )),
        }
    }

    fn text(&self, header: &str) -> String {
        let mut out = format!("{header} {{\n");
        for i in &self.insts {
            let root = if i.root { "ROOT " } else { "" };
            out += &format!("  {root}{} = {} {}", i.name, i.ty, i.op);
            if let Some(s) = &i.sharding {
                out += &format!(", sharding={s}");
            }
            out.push('\n');
        }
        out + "}\n"
    }
}

/// HLO's name for an SSA value: `%7` → `v7`, `%7#1` → `v7.1`, `%cst_2` → `cst_2`.
pub(crate) fn hname(ssa: &str) -> String {
    let s = ssa.trim_start_matches('%').replace('#', ".");
    if s.starts_with(|c: char| c.is_ascii_digit()) {
        format!("v{s}")
    } else {
        s
    }
}

/// The module being converted: finished computations and what the entry's shardings are.
#[derive(Default)]
pub(crate) struct Converter {
    /// Finished computations' HLO text, called ones first.
    pub comps: Vec<String>,
    /// Shardy shardings of ENTRY instructions, by HLO name.
    pub sdy: Vec<(String, ShardyText)>,
    /// `sdy.mesh` definitions by name.
    pub meshes: BTreeMap<String, Mesh>,
    /// The MLIR line of each ENTRY instruction, by HLO name.
    pub lines: BTreeMap<String, usize>,
    regions: usize,
    in_entry: bool,
    /// The entry's returned values after result shardings put copies in front of some.
    pending_returns: Option<Vec<(String, String)>>,
}

/// What a value's `sharding` attribute said.
enum ValueSharding {
    Hlo(String),
    Shardy(ShardyText),
}

/// The sharding attribute of a dictionary: `mhlo.sharding = "{..}"` or `sdy.sharding = ..`.
fn value_sharding(dict: &str) -> Result<Vec<ValueSharding>, String> {
    if let Some(v) = dict_get(dict, "mhlo.sharding") {
        let v = v.trim().trim_matches('"').replace("\\\"", "\"");
        return Ok(vec![ValueSharding::Hlo(v)]);
    }
    let Some(v) = dict_get(dict, "sdy.sharding") else {
        return Ok(Vec::new());
    };
    let v = v.trim();
    if let Some(inner) = v
        .strip_prefix("#sdy.sharding_per_value<[")
        .and_then(|r| r.strip_suffix("]>"))
    {
        return split_top(inner, ',')
            .into_iter()
            .map(|s| ShardyText::parse(s.trim()).map(ValueSharding::Shardy))
            .collect::<Result<_, _>>()
            .map_err(|e| e.to_string());
    }
    Ok(vec![ValueSharding::Shardy(
        ShardyText::parse(v).map_err(|e| e.to_string())?,
    )])
}

impl Converter {
    /// Records a value's sharding on instruction `name` (ENTRY instructions only: shardings in
    /// called functions say nothing once the call is inlined).
    fn shard(&mut self, comp: &mut Comp, name: &str, s: ValueSharding) {
        if !self.in_entry {
            return;
        }
        match s {
            ValueSharding::Hlo(h) => comp.set_sharding(name, h),
            ValueSharding::Shardy(t) => {
                self.sdy.retain(|(n, _)| n != name);
                self.sdy.push((name.to_string(), t));
            }
        }
    }

    fn is_sharded(&self, comp: &Comp, name: &str) -> bool {
        self.sdy.iter().any(|(n, _)| n == name)
            || comp
                .insts
                .iter()
                .any(|i| i.name == name && i.sharding.is_some())
    }

    /// Converts `func.func` text (after `func.func`) into a computation; returns its name.
    pub fn function(&mut self, text: &str, line: usize) -> Result<(), String> {
        let at = |m: String| format!("line {line}: {m}");
        let rest = text
            .trim_start()
            .trim_start_matches("public")
            .trim_start_matches("private")
            .trim_start();
        let rest = rest
            .strip_prefix('@')
            .ok_or_else(|| at("expected `@name` after func.func".into()))?;
        let open = rest
            .find('(')
            .ok_or_else(|| at("expected the function's arguments".into()))?;
        let name = rest[..open].trim().trim_matches('"').to_string();
        let close = matching(rest, open).ok_or_else(|| at("unbalanced argument list".into()))?;
        let args = &rest[open + 1..close];
        let after = &rest[close + 1..];
        let body_open = find_top(after, "{").ok_or_else(|| at(format!("`@{name}` has no body")))?;
        let sig = after[..body_open].trim();
        let body_close =
            matching(after, body_open).ok_or_else(|| at(format!("`@{name}`: unbalanced body")))?;
        let body = &after[body_open + 1..body_close];
        let body_line = line + rest[..close + 1 + body_open].matches('\n').count();
        let entry = name == "main";
        self.in_entry = entry;
        let mut comp = Comp::default();
        for (i, a) in split_top(args, ',').into_iter().enumerate() {
            let a = a.trim();
            if a.is_empty() {
                continue;
            }
            let (v, rest) = a
                .split_once(':')
                .ok_or_else(|| at(format!("argument `{a}` has no type")))?;
            let (ty, dict) = match rest.find(" {") {
                Some(b) => (&rest[..b], rest[b + 2..].trim_end().trim_end_matches('}')),
                None => (rest, ""),
            };
            let ty = TensorTy::parse(ty).map_err(&at)?;
            let n = hname(v);
            comp.push(&n, ty.hlo(), format!("parameter({i})"));
            self.lines.insert(n.clone(), line);
            for s in value_sharding(dict).map_err(&at)? {
                self.shard(&mut comp, &n, s);
            }
        }
        let results = match sig.strip_prefix("->") {
            Some(r) => r.trim(),
            None => "",
        };
        let returned = self.block(&mut comp, body, body_line)?;
        self.result_shardings(&mut comp, results, &returned, line)?;
        self.finish(&mut comp, &returned, &name)?;
        let header = if entry {
            format!("ENTRY {name}")
        } else {
            name.clone()
        };
        self.comps.push(comp.text(&header));
        self.in_entry = false;
        Ok(())
    }

    /// The entry's result shardings: on the returned instruction when it has none of its own,
    /// else on a copy (`result.N`) that becomes the output.
    fn result_shardings(
        &mut self,
        comp: &mut Comp,
        results: &str,
        returned: &[(String, String)],
        line: usize,
    ) -> Result<(), String> {
        if !self.in_entry || results.is_empty() {
            return Ok(());
        }
        let inner = results
            .strip_prefix('(')
            .and_then(|r| r.strip_suffix(')'))
            .unwrap_or(results);
        let mut returned_new = Vec::new();
        for (i, r) in split_top(inner, ',').into_iter().enumerate() {
            let dict = match r.find(" {") {
                Some(b) => r[b + 2..].trim_end().trim_end_matches('}'),
                None => "",
            };
            let ss = value_sharding(dict).map_err(|e| format!("line {line}: result {i}: {e}"))?;
            let Some(s) = ss.into_iter().next() else {
                continue;
            };
            let Some((name, ty)) = returned.get(i) else {
                continue;
            };
            let twice = returned.iter().filter(|(n, _)| n == name).count() > 1;
            if self.is_sharded(comp, name) || twice {
                let copy = format!("result.{i}");
                comp.push(&copy, ty.clone(), format!("copy({name})"));
                returned_new.push((i, copy.clone()));
                self.shard(comp, &copy, s);
            } else {
                self.shard(comp, name, s);
            }
        }
        if !returned_new.is_empty() {
            // Re-point the returned names at the copies.
            let mut r = returned.to_vec();
            for (i, c) in returned_new {
                r[i].0 = c;
            }
            self.pending_returns = Some(r);
        }
        Ok(())
    }

    /// Marks what a computation returns: its one value, or a tuple of several.
    fn finish(
        &mut self,
        comp: &mut Comp,
        returned: &[(String, String)],
        name: &str,
    ) -> Result<(), String> {
        let returned = self
            .pending_returns
            .take()
            .unwrap_or_else(|| returned.to_vec());
        match &returned[..] {
            [] => Err(format!("`{name}` returns nothing")),
            [(one, _)] => comp.root(one),
            many => {
                let names: Vec<&str> = many.iter().map(|(n, _)| n.as_str()).collect();
                let tys: Vec<&str> = many.iter().map(|(_, t)| t.as_str()).collect();
                let root = format!("{name}.return");
                comp.push(
                    &root,
                    format!("({})", tys.join(", ")),
                    format!("tuple({})", names.join(", ")),
                );
                comp.root(&root)
            }
        }
    }

    /// Converts the statements of a block; returns the `return`ed values (HLO name, type).
    pub(crate) fn block(
        &mut self,
        comp: &mut Comp,
        text: &str,
        line: usize,
    ) -> Result<Vec<(String, String)>, String> {
        let mut returned = Vec::new();
        for (l, s) in statements(text, line)? {
            let st = Statement::parse(l, s)?;
            match st.name {
                "return" | "func.return" | "stablehlo.return" | "sdy.return" => {
                    let tys = type_list(st.types).map_err(|e| format!("line {l}: {e}"))?;
                    let names = operand_names(st.body);
                    if names.len() != tys.len() {
                        return Err(format!(
                            "line {l}: `return` of {} values with {} types",
                            names.len(),
                            tys.len()
                        ));
                    }
                    returned = names
                        .iter()
                        .zip(&tys)
                        .map(|(n, t)| (comp.resolve(hname(n)), t.hlo()))
                        .collect();
                }
                _ => super::ops::convert(self, comp, &st)
                    .map_err(|e| format!("line {l}: `{}`: {e}", st.name))?,
            }
        }
        Ok(returned)
    }

    /// A region (`{ ^bb0(%a: T, %b: T): ... }`) as a computation with those parameters.
    pub(crate) fn emit_region(&mut self, text: &str, line: usize) -> Result<String, String> {
        let text = text.trim();
        let inner = text
            .strip_prefix('{')
            .and_then(|r| r.strip_suffix('}'))
            .ok_or("expected a region `{ ... }`")?;
        let mut comp = Comp::default();
        let inner = inner.trim_start();
        let body = match inner.strip_prefix("^bb0(") {
            Some(r) => {
                let close = matching(inner, 4).ok_or("unbalanced block arguments")?;
                for (i, a) in split_top(&r[..close - 5], ',').into_iter().enumerate() {
                    let (v, t) = a.split_once(':').ok_or("a block argument without a type")?;
                    comp.push(
                        &hname(v.trim()),
                        TensorTy::parse(t)?.hlo(),
                        format!("parameter({i})"),
                    );
                }
                inner[close + 1..].trim_start().trim_start_matches(':')
            }
            None => inner,
        };
        self.region_body(comp, body, line, false)
    }

    /// Finishes a region computation from its parameters and body text. A loop body
    /// (`as_tuple`) returns its iteration arguments as one tuple, even a single one.
    fn region_body(
        &mut self,
        mut comp: Comp,
        body: &str,
        line: usize,
        as_tuple: bool,
    ) -> Result<String, String> {
        let entry = std::mem::replace(&mut self.in_entry, false);
        let returned = self.block(&mut comp, body, line);
        self.in_entry = entry;
        let returned = returned?;
        self.regions += 1;
        let name = format!("region_{}", self.regions);
        if as_tuple && returned.len() == 1 {
            let root = format!("{name}.return");
            let (n, t) = &returned[0];
            comp.push(&root, format!("({t})"), format!("tuple({n})"));
            comp.root(&root)?;
        } else {
            self.finish(&mut comp, &returned, &name)?;
        }
        self.comps.push(comp.text(&name));
        Ok(name)
    }

    /// A reduction computation of one binary op (`applies stablehlo.add`) on scalars of `dtype`.
    pub(crate) fn emit_reducer(&mut self, op: &str, dtype: &str) -> Result<String, String> {
        let opcode = super::ops::elementwise(op)
            .ok_or_else(|| format!("`applies {op}` is not an elementwise binary op"))?;
        self.regions += 1;
        let name = format!("region_{}", self.regions);
        let mut comp = Comp::default();
        let t = format!("{dtype}[]");
        comp.push("lhs", t.clone(), "parameter(0)".into());
        comp.push("rhs", t.clone(), "parameter(1)".into());
        comp.push("out", t, format!("{opcode}(lhs, rhs)"));
        comp.root("out")?;
        self.comps.push(comp.text(&name));
        Ok(name)
    }

    /// Defines an op's results: one instruction, or a tuple and one get-tuple-element per
    /// result; records their shardings and lines.
    pub(crate) fn emit(
        &mut self,
        comp: &mut Comp,
        st: &Statement,
        results: &[TensorTy],
        op: String,
    ) -> Result<Vec<String>, String> {
        let names = result_names(st);
        if names.len() != results.len() {
            return Err(format!(
                "{} results named, {} typed",
                names.len(),
                results.len()
            ));
        }
        let shardings = value_sharding(st.attrs)?;
        if names.is_empty() {
            return Err("the op has no result".into());
        }
        if let [one] = &names[..] {
            comp.push(one, results[0].hlo(), op);
            self.lines.insert(one.clone(), st.line);
        } else {
            let tuple = format!("{}.tuple", names[0]);
            comp.push(&tuple, hlo_types(results), op);
            for (i, (n, t)) in names.iter().zip(results).enumerate() {
                comp.push(n, t.hlo(), format!("get-tuple-element({tuple}), index={i}"));
                self.lines.insert(n.clone(), st.line);
            }
            if let [ValueSharding::Hlo(h)] = &shardings[..] {
                comp.set_sharding(&tuple, h.clone());
                return Ok(names);
            }
        }
        for (n, s) in names.iter().zip(shardings) {
            self.shard(comp, n, s);
        }
        Ok(names)
    }

    /// Defines a helper instruction (`NAME.part`) that has no MLIR result of its own.
    pub(crate) fn emit_helper(&mut self, comp: &mut Comp, name: &str, ty: String, op: String) {
        comp.push(name, ty, op);
    }

    /// Defines instruction `name` (an MLIR value of line `line`) with an HLO sharding.
    pub(crate) fn emit_sharded(
        &mut self,
        comp: &mut Comp,
        name: &str,
        ty: String,
        op: String,
        hlo_sharding: &str,
        line: usize,
    ) {
        comp.push(name, ty, op);
        comp.set_sharding(name, hlo_sharding.to_string());
        self.lines.insert(name.to_string(), line);
    }
}

/// The HLO names of a statement's results.
pub(crate) fn result_names(st: &Statement) -> Vec<String> {
    if st.results.len() == 1 && st.count > 1 {
        (0..st.count)
            .map(|i| hname(&format!("{}#{i}", st.results[0])))
            .collect()
    } else {
        st.results.iter().map(|r| hname(r)).collect()
    }
}

/// What the op converters build with.
impl Converter {
    /// A `while`'s `cond` or `do` (`is_body`) region over the loop's tuple: parameter
    /// `loop.p`, then one get-tuple-element per iteration argument, named as the MLIR names
    /// them.
    pub(crate) fn emit_loop_region(
        &mut self,
        args: &[(String, TensorTy)],
        body: &str,
        line: usize,
        is_body: bool,
    ) -> Result<String, String> {
        let mut comp = Comp::default();
        let tys: Vec<TensorTy> = args.iter().map(|(_, t)| t.clone()).collect();
        comp.push("loop.p", hlo_types_tuple(&tys), "parameter(0)".into());
        for (i, (n, t)) in args.iter().enumerate() {
            comp.push(n, t.hlo(), format!("get-tuple-element(loop.p), index={i}"));
        }
        let body = body.trim();
        let inner = body
            .strip_prefix('{')
            .and_then(|r| r.strip_suffix('}'))
            .ok_or("expected a region `{ ... }`")?;
        self.region_body(comp, inner, line, is_body)
    }

    pub(crate) fn shard_value(&mut self, comp: &mut Comp, name: &str, sharding: ShardyText) {
        self.shard(comp, name, ValueSharding::Shardy(sharding));
    }
}

/// A tuple type's text even for one element.
pub(crate) fn hlo_types_tuple(ts: &[TensorTy]) -> String {
    format!(
        "({})",
        ts.iter().map(TensorTy::hlo).collect::<Vec<_>>().join(", ")
    )
}

/// A constant's HLO text for `dense<..>` of type `ty`.
pub(crate) fn constant(text: &str, ty: &TensorTy) -> Result<String, String> {
    let v = text
        .trim()
        .strip_prefix("dense<")
        .and_then(|r| r.strip_suffix('>'))
        .ok_or_else(|| format!("expected `dense<..>`, got `{}`", short(text)))?;
    Ok(format!("constant({})", literal(v, ty)?))
}

/// The integers of `key = [..]` in an op's text.
pub(crate) fn int_list(body: &str, key: &str) -> Result<Option<Vec<i64>>, String> {
    let Some(i) = body.find(key) else {
        return Ok(None);
    };
    let r = body[i + key.len()..].trim_start();
    let r = r.strip_prefix('=').unwrap_or(r).trim_start();
    let end = if r.starts_with('[') {
        matching(r, 0).map(|e| e + 1)
    } else if r.starts_with("array<") {
        matching(r, 5).map(|e| e + 1)
    } else {
        r.find([',', '}', '>', ')']).or(Some(r.len()))
    }
    .ok_or_else(|| format!("`{key}`: unbalanced brackets"))?;
    ints(&r[..end]).map(Some)
}

/// `{1,0}`.
pub(crate) fn braces(v: &[i64]) -> String {
    let v: Vec<String> = v.iter().map(i64::to_string).collect();
    format!("{{{}}}", v.join(","))
}
