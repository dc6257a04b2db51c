//! The MLIR text structure of a StableHLO module: statements, their results, the op name, the
//! operands-and-attributes text, a trailing attribute dictionary and the type signature, with
//! regions kept as text (each is read again as a block where its op is converted).

/// One operation, as written.
#[derive(Clone, Debug)]
pub(crate) struct Statement<'a> {
    /// Result names without `%` (`%7:6` gives one name `7` and `count` 6).
    pub results: Vec<String>,
    /// The `N` of `%name:N` (1 otherwise, or the number of names).
    pub count: usize,
    /// `stablehlo.add`, `func.call` (a generic form's quotes removed).
    pub name: &'a str,
    /// Whether the op was written in MLIR's generic form (`"stablehlo.gather"(...) <{...}>`).
    pub generic: bool,
    /// The text between the op name and the trailing attribute dictionary or type colon.
    pub body: &'a str,
    /// The trailing attribute dictionary's contents (`sdy.sharding = ...`), if any.
    pub attrs: &'a str,
    /// The text after the top-level ` : ` (the type signature).
    pub types: &'a str,
    /// Continuation text (a `while`'s `cond {..} do {..}`).
    pub tail: &'a str,
    /// 1-based line of the statement.
    pub line: usize,
}

/// Scans `s` and returns the byte offsets where the bracket depth (`()[]{}`, and `<>` except
/// in `->`) is zero, as a predicate over positions.
pub(crate) struct Depths {
    depth: Vec<i32>,
}

impl Depths {
    pub fn new(s: &str) -> Depths {
        let b = s.as_bytes();
        let mut depth = Vec::with_capacity(b.len() + 1);
        let (mut d, mut in_str) = (0i32, false);
        for i in 0..b.len() {
            depth.push(if in_str { d + 1 } else { d });
            let c = b[i];
            if in_str {
                if c == b'"' && (i == 0 || b[i - 1] != b'\\') {
                    in_str = false;
                }
                continue;
            }
            match c {
                b'"' => in_str = true,
                b'(' | b'[' | b'{' | b'<' => d += 1,
                b')' | b']' | b'}' => d -= 1,
                b'>' if i == 0 || b[i - 1] != b'-' => d -= 1,
                _ => {}
            }
        }
        depth.push(d);
        Depths { depth }
    }

    /// Depth just before byte `i`.
    pub fn at(&self, i: usize) -> i32 {
        self.depth.get(i).copied().unwrap_or(0)
    }
}

/// Splits at `sep` where no bracket, angle bracket or string is open.
pub(crate) fn split_top(s: &str, sep: char) -> Vec<&str> {
    let d = Depths::new(s);
    let mut out = Vec::new();
    let mut start = 0;
    for (i, c) in s.char_indices() {
        if c == sep && d.at(i) == 0 {
            out.push(&s[start..i]);
            start = i + 1;
        }
    }
    out.push(&s[start..]);
    out
}

/// The first top-level occurrence of `pat` in `s`.
pub(crate) fn find_top(s: &str, pat: &str) -> Option<usize> {
    let d = Depths::new(s);
    s.match_indices(pat).map(|(i, _)| i).find(|&i| d.at(i) == 0)
}

/// The index of the bracket closing the one at `open` (`(`, `[`, `{` or `<`).
pub(crate) fn matching(s: &str, open: usize) -> Option<usize> {
    let d = Depths::new(s);
    let base = d.at(open);
    (open + 1..s.len())
        .find(|&i| d.at(i + 1) == base && matches!(s.as_bytes()[i], b')' | b']' | b'}' | b'>'))
}

/// Splits a block's text into statements, each with its line (`first_line` is the line of the
/// text's start). Continuation lines (`cond {`, `do {`, `reducer(`) join the statement before.
pub(crate) fn statements(text: &str, first_line: usize) -> Result<Vec<(usize, &str)>, String> {
    let d = Depths::new(text);
    let mut out: Vec<(usize, usize, usize)> = Vec::new();
    let (mut start, mut line) = (0, first_line);
    let mut start_line = first_line;
    for (i, c) in text.char_indices() {
        if c == '\n' {
            if d.at(i) == 0 {
                push(text, start, i, start_line, &mut out);
                start = i + 1;
                start_line = line + 1;
            }
            line += 1;
        }
    }
    push(text, start, text.len(), start_line, &mut out);
    if d.at(text.len()) != 0 {
        return Err(format!(
            "line {first_line}: unbalanced brackets in the block starting here"
        ));
    }
    Ok(out.into_iter().map(|(l, a, b)| (l, &text[a..b])).collect())
}

fn push(text: &str, a: usize, b: usize, line: usize, out: &mut Vec<(usize, usize, usize)>) {
    let s = text[a..b].trim();
    if s.is_empty() || s.starts_with("//") {
        return;
    }
    let lead = text[a..b].len() - text[a..b].trim_start().len();
    let continues = ["cond ", "cond{", "do ", "do{", "reducer", "{", "}"]
        .iter()
        .any(|p| s.starts_with(p));
    match out.last_mut() {
        Some(last) if continues => last.2 = b,
        _ => out.push((line, a + lead, b)),
    }
}

impl<'a> Statement<'a> {
    /// Reads one statement (`%r = op ... : types`).
    pub fn parse(line: usize, s: &'a str) -> Result<Statement<'a>, String> {
        let at = |m: &str| format!("line {line}: {m}");
        let s = s.trim();
        let (results, count, rest) = match find_top(s, " = ").filter(|_| s.starts_with('%')) {
            Some(eq) => {
                let lhs = &s[..eq];
                let mut names = Vec::new();
                let mut count = 0;
                for r in lhs.split(',') {
                    let r = r.trim().trim_start_matches('%');
                    match r.split_once(':') {
                        Some((n, k)) => {
                            let k: usize = k
                                .trim()
                                .parse()
                                .map_err(|_| at(&format!("bad result count in `{lhs}`")))?;
                            names.push(n.to_string());
                            count += k;
                        }
                        None => {
                            names.push(r.to_string());
                            count += 1;
                        }
                    }
                }
                (names, count, s[eq + 3..].trim_start())
            }
            None => (Vec::new(), 0, s),
        };
        let (name, generic, after) = if let Some(r) = rest.strip_prefix('"') {
            let end = r.find('"').ok_or_else(|| at("unterminated op name"))?;
            (&r[..end], true, &r[end + 1..])
        } else {
            let end = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '.' || c == '_'))
                .unwrap_or(rest.len());
            (&rest[..end], false, &rest[end..])
        };
        if name.is_empty() {
            return Err(at(&format!("expected an op name in `{}`", short(s))));
        }
        // A continuation (a `while`'s `cond {..} do {..}`, a `reducer`) follows the signature.
        let (head, tail) = match find_top(after, "\n") {
            Some(i) => (&after[..i], after[i..].trim()),
            _ => (after, ""),
        };
        let (before_types, types) = match find_top(head, " : ") {
            Some(i) => (&head[..i], head[i + 3..].trim()),
            None => (head, ""),
        };
        let (body, attrs) = split_attr_dict(before_types);
        Ok(Statement {
            results,
            count,
            name,
            generic,
            body: body.trim(),
            attrs,
            types,
            tail,
            line,
        })
    }
}

/// Separates a trailing `{attr = value, ...}` dictionary from the text before it. A brace block
/// after `=`, `(` or `,` (a region or an attribute's value) is not the dictionary.
fn split_attr_dict(s: &str) -> (&str, &str) {
    let t = s.trim_end();
    if !t.ends_with('}') {
        return (s, "");
    }
    let d = Depths::new(t);
    let base = d.at(t.len() - 1) - 1;
    let open = (0..t.len() - 1)
        .rev()
        .find(|&i| t.as_bytes()[i] == b'{' && d.at(i) == base);
    match open {
        Some(o) => {
            let before = t[..o].trim_end();
            if before.is_empty()
                || before.ends_with(['=', '(', ',', '<'])
                || before.ends_with("do")
                || before.ends_with("cond")
                || t[o..].contains('\n')
            {
                (s, "")
            } else {
                (before, &t[o + 1..t.len() - 1])
            }
        }
        None => (s, ""),
    }
}

/// The first 80 characters of `s`, for error messages.
pub(crate) fn short(s: &str) -> String {
    let s = s.trim();
    match s.char_indices().nth(80) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_string(),
    }
}

/// The attribute `key = value` of a dictionary's contents.
pub(crate) fn dict_get<'a>(dict: &'a str, key: &str) -> Option<&'a str> {
    split_top(dict, ',').into_iter().find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k.trim() == key).then(|| v.trim())
    })
}

/// An MLIR array of integers: `[1, 0]`, `array<i64: 1, 2>`, `dense<[1, 2]> : tensor<2xi64>`.
pub(crate) fn ints(s: &str) -> Result<Vec<i64>, String> {
    let s = s.trim();
    let s = s.split(" : ").next().unwrap_or(s).trim();
    let inner = if let Some(r) = s.strip_prefix("array<") {
        let r = r.trim_end_matches('>');
        r.split_once(':').map_or("", |(_, v)| v)
    } else if let Some(r) = s.strip_prefix("dense<") {
        r.trim_end_matches('>')
    } else {
        s
    };
    inner
        .replace(['[', ']'], " ")
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|t| !t.is_empty())
        .map(|t| {
            t.parse()
                .map_err(|_| format!("expected an integer, got `{t}` in `{}`", short(s)))
        })
        .collect()
}

/// The `%name`s in `s`, in order, without `%`.
pub(crate) fn operand_names(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let start = i + 1;
            let mut j = start;
            while j < b.len()
                && (b[j].is_ascii_alphanumeric()
                    || matches!(b[j], b'_' | b'#' | b'.' | b'$' | b'-'))
            {
                j += 1;
            }
            out.push(s[start..j].to_string());
            i = j;
        } else {
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_split_with_their_regions_and_attribute_dictionaries() {
        let text = "%0 = stablehlo.add %a, %b {sdy.sharding = #sdy.sharding_per_value<[<@mesh, [{}]>]>} : tensor<4xf32>\n\
                    %1:2 = stablehlo.while(%i = %0, %j = %0) : tensor<4xf32>, tensor<4xf32>\n cond {\n  stablehlo.return %c : tensor<i1>\n } do {\n  stablehlo.return %i, %j : tensor<4xf32>, tensor<4xf32>\n }\n\
                    return %1#0 : tensor<4xf32>";
        let st = statements(text, 1).unwrap();
        assert_eq!(st.len(), 3);
        let a = Statement::parse(st[0].0, st[0].1).unwrap();
        assert_eq!(
            (a.name, a.body, a.types),
            ("stablehlo.add", "%a, %b", "tensor<4xf32>")
        );
        assert!(a.attrs.starts_with("sdy.sharding"));
        let w = Statement::parse(st[1].0, st[1].1).unwrap();
        assert_eq!((w.results.clone(), w.count), (vec!["1".to_string()], 2));
        assert!(w.tail.starts_with("cond {"), "{}", w.tail);
        assert_eq!(st[2].0, 8);
        assert_eq!(operand_names("%1#0, %arg2"), vec!["1#0", "arg2"]);
        assert_eq!(ints("array<i64: 1, 2>").unwrap(), vec![1, 2]);
        assert_eq!(
            ints("dense<[[0, 0], [7, 0]]> : tensor<2x2xi64>").unwrap(),
            vec![0, 0, 7, 0]
        );
    }
}
