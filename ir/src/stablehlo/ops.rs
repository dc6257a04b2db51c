//! Each StableHLO (and CHLO, Shardy) op → its HLO instruction text.

use crate::sharding::ShardyText;

use super::convert::{braces, constant, hname, int_list, Comp, Converter};
use super::parse::{find_top, matching, operand_names, short, split_top, Statement};
use super::types::{signature, TensorTy};

/// HLO's opcode of a StableHLO elementwise op (same operands, no attributes).
pub(crate) fn elementwise(name: &str) -> Option<&'static str> {
    let op = name
        .strip_prefix("stablehlo.")
        .or_else(|| name.strip_prefix("chlo."))?;
    Some(match op {
        "add" => "add",
        "subtract" => "subtract",
        "multiply" => "multiply",
        "divide" => "divide",
        "maximum" => "maximum",
        "minimum" => "minimum",
        "power" => "power",
        "remainder" => "remainder",
        "atan2" => "atan2",
        "and" => "and",
        "or" => "or",
        "xor" => "xor",
        "shift_left" => "shift-left",
        "shift_right_logical" => "shift-right-logical",
        "shift_right_arithmetic" => "shift-right-arithmetic",
        "negate" => "negate",
        "abs" => "abs",
        "exponential" => "exponential",
        "exponential_minus_one" => "exponential-minus-one",
        "log" => "log",
        "log_plus_one" => "log-plus-one",
        "logistic" => "logistic",
        "tanh" => "tanh",
        "sqrt" => "sqrt",
        "rsqrt" => "rsqrt",
        "cbrt" => "cbrt",
        "sine" => "sine",
        "cosine" => "cosine",
        "tan" => "tan",
        "not" => "not",
        "floor" => "floor",
        "ceil" => "ceil",
        "sign" => "sign",
        "popcnt" => "popcnt",
        "round_nearest_afz" => "round-nearest-afz",
        "round_nearest_even" => "round-nearest-even",
        "is_finite" => "is-finite",
        "erf" => "erf",
        "convert" => "convert",
        "bitcast_convert" => "bitcast-convert",
        "reshape" => "reshape",
        "select" => "select",
        "clamp" => "clamp",
        "copy" => "copy",
        _ => return None,
    })
}

/// The operands of an op in custom form (every `%name` before the first `key =`), or of a
/// generic op's parenthesized list.
fn operands(st: &Statement, comp: &Comp) -> Vec<String> {
    let text = if st.generic {
        match st
            .body
            .strip_prefix('(')
            .and_then(|r| r.find(')').map(|e| &r[..e]))
        {
            Some(list) => list,
            None => "",
        }
    } else {
        st.body
    };
    operand_names(text)
        .iter()
        .map(|o| comp.resolve(hname(o)))
        .collect()
}

/// The properties `<{...}>` of a generic op.
pub(crate) fn props<'a>(st: &Statement<'a>) -> &'a str {
    let b = st.body;
    match b.find("<{") {
        Some(i) => match matching(b, i) {
            Some(e) => b[i + 2..e].trim_end_matches('}'),
            None => "",
        },
        None => "",
    }
}

/// The regions `({...}, {...})` of a generic op, with the line each starts on.
pub(crate) fn regions<'a>(st: &Statement<'a>) -> Vec<(&'a str, usize)> {
    let b = st.body;
    let Some(i) = b.find("({") else {
        return Vec::new();
    };
    let Some(e) = matching(b, i) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut offset = i + 1;
    for r in split_top(&b[i + 1..e], ',') {
        let lead = r.len() - r.trim_start().len();
        out.push((r.trim(), st.line + b[..offset + lead].matches('\n').count()));
        offset += r.len() + 1;
    }
    out
}

/// `key = value` in a comma-separated text (`<{..}>` properties, `#stablehlo.gather<..>`).
pub(crate) fn prop<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    split_top(text, ',').into_iter().find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k.trim() == key).then(|| v.trim())
    })
}

fn list(text: &str, key: &str) -> Result<Option<Vec<i64>>, String> {
    prop(text, key).map(|v| super::parse::ints(v)).transpose()
}

/// `NxM` of a window field.
fn by_x(v: &[i64]) -> String {
    v.iter().map(i64::to_string).collect::<Vec<_>>().join("x")
}

/// HLO's `window={...}` from StableHLO's window attributes (`padding` may be a splat).
fn window(p: &str, rank: usize) -> Result<String, String> {
    let size = list(p, "window_dimensions")?.ok_or("no window_dimensions")?;
    let mut w = format!("size={}", by_x(&size));
    if let Some(s) = list(p, "window_strides")? {
        w += &format!(" stride={}", by_x(&s));
    }
    if let Some(pad) = list(p, "padding")? {
        let pad = match pad.len() {
            1 => vec![pad[0]; 2 * rank],
            _ => pad,
        };
        if pad.len() != 2 * rank {
            return Err(format!(
                "padding has {} values, rank {rank} needs {}",
                pad.len(),
                2 * rank
            ));
        }
        let pairs: Vec<String> = pad
            .chunks(2)
            .map(|c| format!("{}_{}", c[0], c[1]))
            .collect();
        w += &format!(" pad={}", pairs.join("x"));
    }
    if let Some(d) = list(p, "base_dilations")? {
        w += &format!(" lhs_dilate={}", by_x(&d));
    }
    if let Some(d) = list(p, "window_dilations")? {
        w += &format!(" rhs_dilate={}", by_x(&d));
    }
    Ok(format!("window={{{w}}}"))
}

/// The dimension-numbers text inside `#stablehlo.gather<...>` / `#stablehlo.scatter<...>`.
fn dim_numbers<'a>(p: &'a str, key: &str) -> Result<&'a str, String> {
    let v = prop(p, key).ok_or_else(|| format!("no {key}"))?;
    let open = v
        .find('<')
        .ok_or_else(|| format!("{key}: expected `#stablehlo.X<..>`"))?;
    Ok(v[open + 1..].trim_end_matches('>'))
}

/// Gather's or scatter's dims as HLO attributes, in XLA's order.
fn dims_attrs(d: &str, keys: &[&str]) -> Result<String, String> {
    let mut out = Vec::new();
    for k in keys {
        if *k == "index_vector_dim" {
            let v = prop(d, k).ok_or("no index_vector_dim")?;
            out.push(format!("index_vector_dim={}", v.trim()));
        } else {
            out.push(format!("{k}={}", braces(&list(d, k)?.unwrap_or_default())));
        }
    }
    Ok(out.join(", "))
}

/// Converts one op of a block into `comp`.
pub(crate) fn convert(c: &mut Converter, comp: &mut Comp, st: &Statement) -> Result<(), String> {
    let (arg_tys, res_tys) = signature(st.types, st.count.max(1))?;
    let ops = operands(st, comp);
    let args = ops.join(", ");
    let name = st.name;
    // Operand `i`, or an error where the (mutated, truncated) text names fewer.
    let op = |i: usize| {
        ops.get(i)
            .ok_or_else(|| format!("`{name}` needs operand {i}; the text names {}", ops.len()))
    };
    // An op that changes nothing (XLA's translation drops it too) is its operand.
    let identity = matches!(
        name,
        "stablehlo.broadcast_in_dim" | "stablehlo.reshape" | "stablehlo.convert"
    ) && st.results.len() == 1
        && arg_tys.len() == 1
        && arg_tys == res_tys;
    if identity {
        comp.set_alias(hname(&st.results[0]), op(0)?.clone());
        return Ok(());
    }
    if name == "stablehlo.select" && arg_tys.first().is_some_and(|p| p.dims.is_empty()) {
        if let Some(r) = res_tys.first().filter(|r| !r.dims.is_empty()) {
            // HLO's select takes a predicate of the result's shape: broadcast a scalar one.
            let result = st.results.first().ok_or("select without a result")?;
            let pred = format!("{}.pred", hname(result));
            c.emit_helper(
                comp,
                &pred,
                r.with_dtype("pred").hlo(),
                format!("broadcast({}), dimensions={{}}", op(0)?),
            );
            c.emit(
                comp,
                st,
                &res_tys,
                format!("select({pred}, {}, {})", op(1)?, op(2)?),
            )?;
            return Ok(());
        }
    }
    if let Some(opcode) = elementwise(name) {
        c.emit(comp, st, &res_tys, format!("{opcode}({args})"))?;
        return Ok(());
    }
    let res = res_tys.first().ok_or("the op has no result type")?;
    let text = match name {
        "stablehlo.constant" => constant(st.body, res)?,
        "stablehlo.iota" => {
            let d = int_list(st.body, "dim")?
                .and_then(|d| d.first().copied())
                .ok_or("iota: no dim")?;
            format!("iota(), iota_dimension={d}")
        }
        "stablehlo.broadcast_in_dim" => {
            let d = int_list(st.body, "dims")?.ok_or("no dims")?;
            format!("broadcast({}), dimensions={}", op(0)?, braces(&d))
        }
        "stablehlo.transpose" | "stablehlo.reverse" => {
            let d = int_list(st.body, "dims")?.ok_or("no dims")?;
            let opcode = name.trim_start_matches("stablehlo.");
            format!("{opcode}({}), dimensions={}", op(0)?, braces(&d))
        }
        "stablehlo.concatenate" => {
            let d = int_list(st.body, "dim")?.ok_or("no dim")?;
            format!("concatenate({args}), dimensions={}", braces(&d))
        }
        "stablehlo.compare" => {
            let dir = st.body.split(',').next().unwrap_or("").trim();
            if !matches!(dir, "EQ" | "NE" | "LT" | "LE" | "GT" | "GE") {
                return Err(format!("unknown comparison `{dir}`"));
            }
            format!("compare({args}), direction={dir}")
        }
        "stablehlo.slice" => slice(st, &ops)?,
        "stablehlo.pad" => {
            let lo = int_list(st.body, "low")?.ok_or("no low")?;
            let hi = int_list(st.body, "high")?.ok_or("no high")?;
            let int = int_list(st.body, "interior")?.unwrap_or_else(|| vec![0; lo.len()]);
            let p: Vec<String> = (0..lo.len())
                .map(|i| {
                    format!(
                        "{}_{}_{}",
                        lo[i],
                        hi.get(i).copied().unwrap_or(0),
                        int.get(i).copied().unwrap_or(0)
                    )
                })
                .collect();
            format!("pad({args}), padding={}", p.join("x"))
        }
        "stablehlo.dot_general" => dot(st, &args)?,
        "stablehlo.dynamic_slice" => {
            let s = int_list(st.body, "sizes")?.ok_or("no sizes")?;
            format!("dynamic-slice({args}), dynamic_slice_sizes={}", braces(&s))
        }
        "stablehlo.dynamic_update_slice" => format!("dynamic-update-slice({args})"),
        "stablehlo.reduce" => reduce(c, st, &ops, &arg_tys)?,
        "stablehlo.gather" => {
            let p = props(st);
            let d = dim_numbers(p, "dimension_numbers")?;
            let dims = dims_attrs(
                d,
                &[
                    "offset_dims",
                    "collapsed_slice_dims",
                    "start_index_map",
                    "operand_batching_dims",
                    "start_indices_batching_dims",
                    "index_vector_dim",
                ],
            )?;
            let sizes = list(p, "slice_sizes")?.ok_or("no slice_sizes")?;
            format!("gather({args}), {dims}, slice_sizes={}", braces(&sizes))
        }
        "stablehlo.scatter" => {
            let p = props(st);
            let d = dim_numbers(p, "scatter_dimension_numbers")?;
            let dims = dims_attrs(
                d,
                &[
                    "update_window_dims",
                    "inserted_window_dims",
                    "scatter_dims_to_operand_dims",
                    "input_batching_dims",
                    "scatter_indices_batching_dims",
                    "index_vector_dim",
                ],
            )?;
            let r = regions(st);
            let (text, line) = r.first().ok_or("scatter without its combiner region")?;
            let f = c.emit_region(text, *line)?;
            format!("scatter({args}), {dims}, to_apply={f}")
        }
        "stablehlo.sort" => {
            let p = props(st);
            let dim = prop(p, "dimension")
                .and_then(|v| v.split(':').next())
                .map(str::trim)
                .ok_or("no dimension")?;
            let stable = prop(p, "is_stable")
                .map(|v| v.starts_with("true"))
                .unwrap_or(false);
            let r = regions(st);
            let (text, line) = r.first().ok_or("sort without its comparator")?;
            let f = c.emit_region(text, *line)?;
            format!("sort({args}), dimensions={{{dim}}}, is_stable={stable}, to_apply={f}")
        }
        "stablehlo.reduce_window" => {
            let p = props(st);
            let w = window(p, res.dims.len())?;
            let r = regions(st);
            let (text, line) = r.first().ok_or("reduce_window without its region")?;
            let f = c.emit_region(text, *line)?;
            format!("reduce-window({args}), {w}, to_apply={f}")
        }
        "stablehlo.select_and_scatter" => {
            let p = props(st);
            let w = window(p, res.dims.len())?;
            let r = regions(st);
            let [(s, sl), (t, tl)] = &r[..] else {
                return Err("select_and_scatter needs a select and a scatter region".into());
            };
            let select = c.emit_region(s, *sl)?;
            let scatter = c.emit_region(t, *tl)?;
            format!("select-and-scatter({args}), {w}, select={select}, scatter={scatter}")
        }
        "stablehlo.convolution" => convolution(st, &args, &arg_tys)?,
        "stablehlo.while" => return while_loop(c, comp, st, &res_tys),
        "func.call" | "call" => {
            let f = st
                .body
                .trim()
                .strip_prefix('@')
                .and_then(|r| r.split('(').next())
                .ok_or("expected `@function(...)`")?;
            format!("call({args}), to_apply={}", f.trim_matches('"'))
        }
        "chlo.top_k" => {
            let k = int_list(st.body, "k")?
                .and_then(|k| k.first().copied())
                .ok_or("no k")?;
            format!("topk({}), k={k}, largest=true", op(0)?)
        }
        "chlo.square" => format!("multiply({0}, {0})", op(0)?),
        "chlo.erfc" => return erfc(c, comp, st, op(0)?, res),
        "stablehlo.custom_call" => {
            let target = st
                .body
                .trim()
                .strip_prefix('@')
                .and_then(|r| r.split('(').next())
                .ok_or("expected `@target(...)`")?;
            let mut s = format!(
                "custom-call({args}), custom_call_target=\"{}\"",
                target.trim_matches('"')
            );
            if let Some(b) = prop(st.attrs, "backend_config") {
                s += &format!(", backend_config={b}");
            }
            s
        }
        "sdy.sharding_constraint" => {
            let at = st
                .body
                .find('<')
                .ok_or("sharding_constraint without a sharding")?;
            let t = ShardyText::parse(st.body[at..].trim()).map_err(|e| e.to_string())?;
            let names = c.emit(
                comp,
                st,
                &res_tys,
                format!("custom-call({}), custom_call_target=\"Sharding\"", op(0)?),
            )?;
            c.shard_value(comp, &names[0], t);
            return Ok(());
        }
        "stablehlo.rng_bit_generator" => {
            let alg = st
                .body
                .split("algorithm")
                .nth(1)
                .map(|r| {
                    r.trim_start_matches([' ', '='])
                        .split([' ', ','])
                        .next()
                        .unwrap_or("")
                })
                .unwrap_or("DEFAULT");
            let alg = match alg {
                "THREE_FRY" => "rng_three_fry",
                "PHILOX" => "rng_philox",
                _ => "rng_default",
            };
            format!("rng-bit-generator({}), algorithm={alg}", op(0)?)
        }
        "sdy.manual_computation" => {
            return super::manual::manual_computation(c, comp, st, &res_tys)
        }
        "stablehlo.all_reduce"
        | "stablehlo.all_gather"
        | "stablehlo.reduce_scatter"
        | "stablehlo.all_to_all"
        | "stablehlo.collective_permute" => super::manual::collective(c, st, &args)?,
        "stablehlo.optimization_barrier" => format!("opt-barrier({args})"),
        _ => return Err(format!("unsupported op `{name}` (`{}`)", short(st.body))),
    };
    c.emit(comp, st, &res_tys, text)?;
    Ok(())
}

/// `stablehlo.slice %x [0:4, 1:7:2]` (or `start_indices = [..], limit_indices = [..], strides`).
fn slice(st: &Statement, ops: &[String]) -> Result<String, String> {
    let b = st.body;
    let parts: Vec<String> = match (b.find('['), int_list(b, "start_indices")?) {
        (_, Some(starts)) => {
            let limits = int_list(b, "limit_indices")?.ok_or("no limit_indices")?;
            let strides = int_list(b, "strides")?.unwrap_or_else(|| vec![1; starts.len()]);
            (0..starts.len())
                .map(|i| {
                    format!(
                        "[{}:{}:{}]",
                        starts[i],
                        limits.get(i).copied().unwrap_or(0),
                        strides.get(i).copied().unwrap_or(1)
                    )
                })
                .collect()
        }
        (Some(open), None) => {
            let close = matching(b, open).ok_or("unbalanced slice")?;
            split_top(&b[open + 1..close], ',')
                .into_iter()
                .map(|r| {
                    let f: Vec<&str> = r.trim().split(':').map(str::trim).collect();
                    match f[..] {
                        [a, z] => Ok(format!("[{a}:{z}:1]")),
                        [a, z, s] => Ok(format!("[{a}:{z}:{s}]")),
                        _ => Err(format!("bad slice range `{r}`")),
                    }
                })
                .collect::<Result<_, _>>()?
        }
        (None, None) => return Err("a slice without its ranges".into()),
    };
    let x = ops.first().ok_or("a slice without its operand")?;
    Ok(format!("slice({x}), slice={{{}}}", parts.join(", ")))
}

/// `dot_general` with `batching_dims = [0] x [0], contracting_dims = [2] x [1]`.
fn dot(st: &Statement, args: &str) -> Result<String, String> {
    let pair = |key: &str| -> Result<(Vec<i64>, Vec<i64>), String> {
        let Some(i) = st.body.find(key) else {
            return Ok((Vec::new(), Vec::new()));
        };
        let r = st.body[i + key.len()..]
            .trim_start()
            .trim_start_matches('=')
            .trim_start();
        let x = find_top(r, " x ").ok_or_else(|| format!("{key}: expected `[..] x [..]`"))?;
        let rhs = r[x + 3..].trim_start();
        let end = matching(rhs, 0).ok_or_else(|| format!("{key}: unbalanced"))?;
        Ok((
            super::parse::ints(&r[..x])?,
            super::parse::ints(&rhs[..=end])?,
        ))
    };
    let (lb, rb) = pair("batching_dims")?;
    let (lc, rc) = pair("contracting_dims")?;
    let mut s = format!("dot({args})");
    if !lb.is_empty() {
        s += &format!(", lhs_batch_dims={}", braces(&lb));
    }
    s += &format!(", lhs_contracting_dims={}", braces(&lc));
    if !rb.is_empty() {
        s += &format!(", rhs_batch_dims={}", braces(&rb));
    }
    s += &format!(", rhs_contracting_dims={}", braces(&rc));
    Ok(s)
}

/// `stablehlo.reduce(%x init: %c) applies stablehlo.add across dimensions = [..]`, its variadic
/// form with a `reducer(..) (..) {..}` body, and the generic form.
fn reduce(
    c: &mut Converter,
    st: &Statement,
    ops: &[String],
    arg_tys: &[TensorTy],
) -> Result<String, String> {
    let b = st.body;
    let n = ops.len() / 2;
    let dims = match int_list(b, "dimensions")? {
        Some(d) => d,
        None => list(props(st), "dimensions")?.ok_or("no dimensions")?,
    };
    // Custom form: operands pair up `(%x init: %c), (%y init: %d)`; HLO lists inputs then inits.
    let ordered: Vec<String> = if st.generic {
        ops.to_vec()
    } else {
        (0..n)
            .map(|i| ops[2 * i].clone())
            .chain((0..n).map(|i| ops[2 * i + 1].clone()))
            .collect()
    };
    let f = if let Some(i) = b.find("applies ") {
        let op = b[i + 8..].split_whitespace().next().unwrap_or("");
        let init_ty = arg_tys.get(n).ok_or("reduce: missing the init's type")?;
        c.emit_reducer(op, &init_ty.dtype)?
    } else if st.generic {
        let r = regions(st);
        let (text, line) = r.first().ok_or("reduce without its body")?;
        c.emit_region(text, *line)?
    } else {
        reducer_region(c, st, n)?
    };
    Ok(format!(
        "reduce({}), dimensions={}, to_apply={f}",
        ordered.join(", "),
        braces(&dims)
    ))
}

/// The `reducer(%a0: T, %b0: T) (%a1: U, %b1: U) { .. }` of a variadic reduce: HLO's
/// parameters are the accumulators, then the inputs.
fn reducer_region(c: &mut Converter, st: &Statement, n: usize) -> Result<String, String> {
    let t = st.tail;
    let r = t
        .strip_prefix("reducer")
        .ok_or("reduce without `applies` or `reducer`")?;
    let body_at = find_top(r, "{").ok_or("reducer without a body")?;
    let mut lhs = Vec::new();
    let mut rhs = Vec::new();
    for group in split_top(r[..body_at].trim(), ' ')
        .into_iter()
        .filter(|g| !g.trim().is_empty())
    {
        let g = group.trim().trim_start_matches('(').trim_end_matches(')');
        let pair = split_top(g, ',');
        let [a, b] = &pair[..] else {
            return Err(format!("reducer group `{}` is not a pair", short(g)));
        };
        lhs.push(a.trim().to_string());
        rhs.push(b.trim().to_string());
    }
    if lhs.len() != n {
        return Err(format!(
            "reducer has {} argument pairs for {n} inputs",
            lhs.len()
        ));
    }
    let args: Vec<String> = lhs.into_iter().chain(rhs).collect();
    let text = format!("{{ ^bb0({}):\n{}", args.join(", "), &r[body_at + 1..]);
    c.emit_region(&text, st.line + t[..body_at].matches('\n').count())
}

/// `convolution(%a, %b) dim_numbers = [b, 0, 1, f]x[0, 1, i, o]->[b, 0, 1, f], window = {..}`.
fn convolution(st: &Statement, args: &str, arg_tys: &[TensorTy]) -> Result<String, String> {
    let b = st.body;
    let dn = b.split("dim_numbers").nth(1).ok_or("no dim_numbers")?;
    let dn = dn.trim_start().trim_start_matches('=').trim_start();
    let end = dn.find(", window").unwrap_or(dn.len());
    let dn = &dn[..end];
    let labels = |s: &str| -> String { s.replace(['[', ']', ' ', ','], "") };
    let (ins, out) = dn.split_once("->").ok_or("dim_numbers without `->`")?;
    let (lhs, rhs) = ins.split_once("]x[").ok_or("dim_numbers without `x`")?;
    let rhs_l = labels(rhs);
    let kernel = arg_tys.get(1).ok_or("convolution without a kernel type")?;
    // The window's size is the kernel's spatial sizes, in spatial-dim order.
    let mut size = vec![1i64; rhs_l.chars().filter(char::is_ascii_digit).count()];
    for (pos, ch) in rhs_l.chars().enumerate() {
        if let Some(d) = ch.to_digit(10) {
            let k = *kernel.dims.get(pos).ok_or("kernel rank below its labels")? as i64;
            *size
                .get_mut(d as usize)
                .ok_or("spatial dim label out of range")? = k;
        }
    }
    let mut w = format!("size={}", by_x(&size));
    if let Some(wi) = b.find("window = {") {
        let close = matching(b, wi + 9).ok_or("unbalanced window")?;
        let wt = &b[wi + 10..close];
        if let Some(s) = int_list(wt, "stride")? {
            w += &format!(" stride={}", by_x(&s));
        }
        if let Some(p) = int_list(wt, "pad")? {
            let pairs: Vec<String> = p
                .chunks(2)
                .map(|c| format!("{}_{}", c[0], c.get(1).copied().unwrap_or(0)))
                .collect();
            w += &format!(" pad={}", pairs.join("x"));
        }
        if let Some(d) = int_list(wt, "lhs_dilate")? {
            w += &format!(" lhs_dilate={}", by_x(&d));
        }
        if let Some(d) = int_list(wt, "rhs_dilate")? {
            w += &format!(" rhs_dilate={}", by_x(&d));
        }
        if wt.contains("true") {
            return Err("a reversed convolution window is unsupported".into());
        }
    }
    let group = |k: &str| {
        prop(st.attrs, k)
            .and_then(|v| v.split(':').next())
            .map(str::trim)
            .unwrap_or("1")
            .to_string()
    };
    Ok(format!(
        "convolution({args}), window={{{w}}}, dim_labels={}_{}->{}, feature_group_count={}, batch_group_count={}",
        labels(lhs),
        rhs_l,
        labels(out),
        group("feature_group_count"),
        group("batch_group_count")
    ))
}

/// `stablehlo.while(%a = %x, ..) : T.. cond {..} do {..}`: a tuple of the initial values, the
/// `while`, and one get-tuple-element per result.
fn while_loop(
    c: &mut Converter,
    comp: &mut Comp,
    st: &Statement,
    res: &[TensorTy],
) -> Result<(), String> {
    let b = st.body;
    let close = matching(b, 0).ok_or("while: unbalanced arguments")?;
    let mut args = Vec::new();
    let mut inits = Vec::new();
    for (i, a) in split_top(&b[1..close], ',').into_iter().enumerate() {
        let (n, v) = a.split_once('=').ok_or("while: expected `%arg = %init`")?;
        let ty = res.get(i).ok_or("while: more arguments than types")?;
        args.push((hname(n.trim()), ty.clone()));
        inits.push(hname(v.trim()));
    }
    let t = st.tail;
    let cond_at = t.find('{').ok_or("while without `cond {..}`")?;
    let cond_end = matching(t, cond_at).ok_or("while: unbalanced cond")?;
    let rest = &t[cond_end + 1..];
    let do_at = rest.find('{').ok_or("while without `do {..}`")?;
    let do_end = matching(rest, do_at).ok_or("while: unbalanced body")?;
    let line = |off: usize| st.line + 1 + t[..off].matches('\n').count();
    let cond = c.emit_loop_region(&args, &t[cond_at..=cond_end], line(cond_at), false)?;
    let body = c.emit_loop_region(
        &args,
        &rest[do_at..=do_end],
        line(cond_end + 1 + do_at),
        true,
    )?;
    let base = hname(st.results.first().ok_or("while without a result")?);
    let init = format!("{base}.init");
    let tuple_ty = super::convert::hlo_types_tuple(res);
    c.emit_helper(
        comp,
        &init,
        tuple_ty.clone(),
        format!("tuple({})", inits.join(", ")),
    );
    // A one-result loop still yields a tuple: define it as a tuple, then its element.
    let loop_name = format!("{base}.while");
    c.emit_helper(
        comp,
        &loop_name,
        tuple_ty,
        format!("while({init}), condition={cond}, body={body}"),
    );
    let names: Vec<String> = if st.count > 1 {
        (0..st.count)
            .map(|i| hname(&format!("{}#{i}", st.results[0])))
            .collect()
    } else {
        st.results.iter().map(|r| hname(r)).collect()
    };
    for (i, (n, ty)) in names.iter().zip(res).enumerate() {
        c.emit_helper(
            comp,
            n,
            ty.hlo(),
            format!("get-tuple-element({loop_name}), index={i}"),
        );
    }
    Ok(())
}

/// `chlo.erfc x` = 1 − erf(x).
fn erfc(
    c: &mut Converter,
    comp: &mut Comp,
    st: &Statement,
    x: &str,
    res: &TensorTy,
) -> Result<(), String> {
    let base = hname(st.results.first().ok_or("erfc without a result")?);
    let scalar = res.with_dtype(&res.dtype);
    let one = format!("{base}.one");
    c.emit_helper(
        comp,
        &format!("{one}.s"),
        format!("{}[]", res.dtype),
        "constant(1)".into(),
    );
    c.emit_helper(
        comp,
        &one,
        scalar.hlo(),
        format!("broadcast({one}.s), dimensions={{}}"),
    );
    let erf = format!("{base}.erf");
    c.emit_helper(comp, &erf, res.hlo(), format!("erf({x})"));
    c.emit(
        comp,
        st,
        std::slice::from_ref(res),
        format!("subtract({one}, {erf})"),
    )?;
    Ok(())
}
