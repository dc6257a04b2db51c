//! The HLO module text, read into computations and instructions with their attributes kept as
//! written (so the module prints back unchanged apart from shardings).

use crate::error::IrError;

/// An HLO shape as written: an array `f32[8,4]{1,0}` or a tuple `(f32[4], s32[])`.
#[derive(Clone, Debug, PartialEq)]
pub enum HloType {
    /// Element type name (`f32`, `s32`, `pred`), dims, and the minor-to-major layout if given.
    Array {
        dtype: String,
        dims: Vec<u64>,
        layout: Option<Vec<u64>>,
    },
    Tuple(Vec<HloType>),
}

/// One instruction: `[ROOT] name = type opcode(operands), attr=value, ...`.
#[derive(Clone, Debug, PartialEq)]
pub struct Instruction {
    pub root: bool,
    /// The name without a leading `%`.
    pub name: String,
    /// The name as written (with its `%`, if it had one).
    pub name_text: String,
    /// The type exactly as written (printed back verbatim; empty when omitted).
    pub type_text: String,
    /// The type, `None` where the text omits it (XLA's parser infers it then).
    pub ty: Option<HloType>,
    pub opcode: String,
    /// The text between the opcode's parentheses (operands, or a constant's literal).
    pub args: String,
    /// Attributes in order, values as written.
    pub attrs: Vec<(String, String)>,
    /// 1-based line of the instruction's start, for error messages.
    pub line: usize,
}

impl Instruction {
    /// The value of attribute `key`, if present.
    pub fn attr(&self, key: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Operand names (without `%`, and without the operand types old HLO text wrote).
    pub fn operands(&self) -> Vec<String> {
        split_top(&self.args, ',')
            .into_iter()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                // Drop `/*index=5*/` comments XLA puts in long operand lists.
                let s = match (s.find("/*"), s.find("*/")) {
                    (Some(a), Some(b)) if a < b => s[b + 2..].trim(),
                    _ => s,
                };
                let last = s.rsplit(char::is_whitespace).next().unwrap_or(s);
                last.trim_start_matches('%').to_string()
            })
            .collect()
    }
}

/// One computation: the ENTRY or a called one (a reduction's `to_apply`).
#[derive(Clone, Debug, PartialEq)]
pub struct Computation {
    pub entry: bool,
    pub name: String,
    /// The name as written (with its `%`, if it had one).
    pub name_text: String,
    /// The header between the name and the opening brace (`(p: f32[]) -> f32[]`), verbatim.
    pub signature: String,
    pub instructions: Vec<Instruction>,
}

impl Computation {
    /// The ROOT instruction (the last one when none is marked).
    pub fn root(&self) -> Option<&Instruction> {
        self.instructions
            .iter()
            .find(|i| i.root)
            .or(self.instructions.last())
    }
}

/// A parsed HLO module.
#[derive(Clone, Debug, PartialEq)]
pub struct HloModule {
    /// The `HloModule ...` line, verbatim (empty when the text has none).
    pub header: String,
    pub computations: Vec<Computation>,
}

impl HloModule {
    /// The ENTRY computation.
    pub fn entry(&self) -> Option<&Computation> {
        self.computations.iter().find(|c| c.entry)
    }

    pub fn computation(&self, name: &str) -> Option<&Computation> {
        let name = name.trim_start_matches('%');
        self.computations.iter().find(|c| c.name == name)
    }
}

/// Splits at `sep` where no bracket, brace, paren or string is open.
pub(crate) fn split_top(s: &str, sep: char) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut in_str, mut start) = (0i32, false, 0);
    let mut prev = ' ';
    for (i, c) in s.char_indices() {
        match c {
            '"' if prev != '\\' => in_str = !in_str,
            '{' | '[' | '(' if !in_str => depth += 1,
            '}' | ']' | ')' if !in_str => depth -= 1,
            c if c == sep && depth == 0 && !in_str => {
                out.push(&s[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
        prev = c;
    }
    out.push(&s[start..]);
    out
}

/// A cursor over the module text.
struct Cursor<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn line(&self) -> usize {
        self.s[..self.pos].matches('\n').count() + 1
    }

    fn err(&self, expected: &str) -> IrError {
        let rest: String = self
            .s
            .get(self.pos..)
            .unwrap_or("")
            .chars()
            .take(40)
            .map(|c| if c == '\n' { ' ' } else { c })
            .collect();
        IrError::Format(format!(
            "HLO text line {}: expected {expected} (found `{rest}`)",
            self.line()
        ))
    }

    /// Skips whitespace and `//` or `/* */` comments.
    fn ws(&mut self) {
        loop {
            let rest = &self.s[self.pos..];
            let t = rest.trim_start();
            self.pos += rest.len() - t.len();
            if t.starts_with("//") {
                self.pos += t.find('\n').unwrap_or(t.len());
            } else if t.starts_with("/*") {
                self.pos += t.find("*/").map_or(t.len(), |e| e + 2);
            } else {
                return;
            }
        }
    }

    /// Skips spaces and tabs only (an instruction's attributes may not cross a newline
    /// unless a comma came first).
    fn peek(&mut self) -> Option<char> {
        self.ws();
        self.s[self.pos..].chars().next()
    }

    fn eat(&mut self, tok: &str) -> bool {
        self.ws();
        if self.s[self.pos..].starts_with(tok) {
            self.pos += tok.len();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, tok: &str) -> Result<(), IrError> {
        if self.eat(tok) {
            Ok(())
        } else {
            Err(self.err(&format!("`{tok}`")))
        }
    }

    /// A name: letters, digits, `_ . - %`.
    fn name(&mut self) -> Result<&'a str, IrError> {
        self.ws();
        let start = self.pos;
        while self.s[self.pos..]
            .starts_with(|c: char| c.is_ascii_alphanumeric() || "_.-%".contains(c))
        {
            self.pos += 1;
        }
        if start == self.pos {
            return Err(self.err("a name"));
        }
        Ok(&self.s[start..self.pos])
    }

    /// Text up to the matching close of the bracket at the cursor; returns the inside.
    fn balanced(&mut self) -> Result<&'a str, IrError> {
        self.ws();
        let open = self.pos;
        let (mut depth, mut in_str, mut prev) = (0i32, false, ' ');
        for (i, c) in self.s[open..].char_indices() {
            match c {
                '"' if prev != '\\' => in_str = !in_str,
                '{' | '[' | '(' if !in_str => depth += 1,
                '}' | ']' | ')' if !in_str => {
                    depth -= 1;
                    if depth == 0 {
                        self.pos = open + i + 1;
                        return Ok(&self.s[open + 1..open + i]);
                    }
                }
                _ => {}
            }
            prev = c;
        }
        Err(self.err("a closing bracket"))
    }

    /// An attribute value: up to a top-level `,`, a newline, or the computation's `}`.
    fn attr_value(&mut self) -> Result<&'a str, IrError> {
        self.ws();
        let start = self.pos;
        let (mut depth, mut in_str, mut prev) = (0i32, false, ' ');
        let mut end = self.s.len();
        for (i, c) in self.s[start..].char_indices() {
            match c {
                '"' if prev != '\\' => in_str = !in_str,
                '{' | '[' | '(' if !in_str => depth += 1,
                '}' | ']' | ')' if !in_str => {
                    if depth == 0 {
                        end = start + i;
                        break;
                    }
                    depth -= 1;
                }
                ',' | '\n' if !in_str && depth == 0 => {
                    end = start + i;
                    break;
                }
                _ => {}
            }
            prev = c;
        }
        if depth != 0 || in_str {
            return Err(self.err("a balanced attribute value"));
        }
        self.pos = end;
        Ok(self.s[start..end].trim())
    }

    fn ty(&mut self) -> Result<(HloType, &'a str), IrError> {
        self.ws();
        let start = self.pos;
        let t = if self.peek() == Some('(') {
            self.pos += 1;
            let mut elems = Vec::new();
            if !self.eat(")") {
                loop {
                    elems.push(self.ty()?.0);
                    if self.eat(")") {
                        break;
                    }
                    self.expect(",")?;
                }
            }
            HloType::Tuple(elems)
        } else {
            let dtype = self.name()?.to_string();
            if !self.s[self.pos..].starts_with('[') {
                return Err(self.err("`[` after the element type"));
            }
            let open = self.pos;
            let inside = self.balanced()?;
            let dims = int_list(inside).ok_or_else(|| {
                self.pos = open;
                self.err("static dims like `[8,4]` (dynamic dims unsupported)")
            })?;
            let layout = if self.s[self.pos..].starts_with('{') {
                let l = self.balanced()?;
                // Tiling and memory-space suffixes (`{1,0:T(8,128)}`) are not layout order.
                int_list(l.split(':').next().unwrap_or(""))
            } else {
                None
            };
            HloType::Array {
                dtype,
                dims,
                layout,
            }
        };
        Ok((t, self.s[start..self.pos].trim()))
    }

    fn instruction(&mut self) -> Result<Instruction, IrError> {
        self.ws();
        let line = self.line();
        let root = self.eat("ROOT ");
        let name_text = self.name()?.to_string();
        let name = name_text.trim_start_matches('%').to_string();
        self.expect("=")?;
        // The type may be omitted (`ROOT c = copy(p)`): then a name and `(` come first.
        let save = self.pos;
        let word = if self.peek() == Some('(') {
            ""
        } else {
            self.name()?
        };
        let (ty, type_text, opcode) = if !word.is_empty() && self.s[self.pos..].starts_with('(') {
            (None, "", word.to_string())
        } else {
            self.pos = save;
            let (ty, text) = self.ty()?;
            (Some(ty), text, self.name()?.to_string())
        };
        if self.peek() != Some('(') {
            return Err(self.err(&format!("`(` after opcode `{opcode}`")));
        }
        let args = self.balanced()?.to_string();
        let mut attrs = Vec::new();
        while self.eat(",") {
            let key = self.name()?.to_string();
            self.expect("=")?;
            attrs.push((key, self.attr_value()?.to_string()));
        }
        Ok(Instruction {
            root,
            name,
            name_text,
            type_text: type_text.to_string(),
            ty,
            opcode,
            args,
            attrs,
            line,
        })
    }

    fn computation(&mut self) -> Result<Computation, IrError> {
        let entry = self.eat("ENTRY ");
        let name_text = self.name()?.to_string();
        let name = name_text.trim_start_matches('%').to_string();
        let sig_start = self.pos;
        if self.peek() == Some('(') {
            self.balanced()?;
        }
        if self.eat("->") {
            self.ty()?;
        }
        let signature = self.s[sig_start..self.pos].trim().to_string();
        self.expect("{")?;
        let mut instructions = Vec::new();
        while !self.eat("}") {
            if self.pos >= self.s.len() {
                return Err(self.err("`}` closing the computation"));
            }
            instructions.push(self.instruction()?);
        }
        // Computation attributes (`, execution_thread="..."`) run to the end of the line.
        if self.eat(",") {
            self.pos += self.s[self.pos..]
                .find('\n')
                .unwrap_or(self.s.len() - self.pos);
        }
        Ok(Computation {
            entry,
            name,
            name_text,
            signature,
            instructions,
        })
    }
}

/// `1,2,3` (spaces allowed, empty is empty) as integers.
pub(crate) fn int_list(s: &str) -> Option<Vec<u64>> {
    let s = s.trim();
    if s.is_empty() {
        return Some(Vec::new());
    }
    s.split(',').map(|x| x.trim().parse().ok()).collect()
}

const STACK_FRAME_TABLES: [&str; 4] =
    ["FileNames", "FunctionNames", "FileLocations", "StackFrames"];

/// Parses HLO module text into computations.
pub fn parse_module(text: &str) -> Result<HloModule, IrError> {
    let mut c = Cursor { s: text, pos: 0 };
    c.ws();
    let mut header = String::new();
    if c.s[c.pos..].starts_with("HloModule") {
        let end = c.s[c.pos..].find('\n').map_or(c.s.len(), |e| c.pos + e);
        header = c.s[c.pos..end].trim().to_string();
        c.pos = end;
    }
    let mut computations = Vec::new();
    while c.peek().is_some() {
        // XLA's dumps carry stack-frame tables (`FileNames`, `StackFrames`, ...) between the
        // header and the computations: a title line, numbered rows, a blank line.
        let rest = &c.s[c.pos..];
        if STACK_FRAME_TABLES.iter().any(|t| rest.starts_with(t)) {
            let end = rest.find("\n\n").map_or(rest.len(), |e| e + 2);
            c.pos += end;
            continue;
        }
        computations.push(c.computation()?);
    }
    let module = HloModule {
        header,
        computations,
    };
    if module.entry().is_none() {
        return Err(IrError::Format(
            "HLO text: the module has no ENTRY computation".into(),
        ));
    }
    Ok(module)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instructions_keep_their_attributes_verbatim() {
        let m = parse_module(
            "HloModule m, num_partitions=2\n\nadd.1 {\n  x = f32[] parameter(0)\n  y = f32[] parameter(1)\n  ROOT a = f32[] add(x, y)\n}\n\nENTRY %e (p: f32[4,2]{1,0}) -> f32[4] {\n  %p = f32[4,2]{1,0} parameter(0),\n    sharding={devices=[2,1]0,1 metadata={op_name=\"a,b\"}}\n  %c = f32[] constant(0)\n  ROOT %r = f32[4]{0} reduce(f32[4,2]{1,0} %p, %c), dimensions={1}, to_apply=add.1\n}\n",
        )
        .unwrap();
        assert_eq!(m.header, "HloModule m, num_partitions=2");
        let e = m.entry().unwrap();
        assert_eq!(e.name, "e");
        let p = &e.instructions[0];
        assert_eq!(
            p.attr("sharding"),
            Some("{devices=[2,1]0,1 metadata={op_name=\"a,b\"}}")
        );
        assert_eq!(p.line, 10);
        let r = e.root().unwrap();
        assert_eq!(r.operands(), vec!["p", "c"]);
        assert_eq!(r.attr("to_apply"), Some("add.1"));
        assert_eq!(r.type_text, "f32[4]{0}");
        assert!(m.computation("add.1").is_some());
    }

    #[test]
    fn malformed_text_names_the_line() {
        let e = parse_module("HloModule m\nENTRY e {\n  p = f32[4 parameter(0)\n}")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 3"), "{e}");
        let e = parse_module("HloModule m\nc {\n}").unwrap_err().to_string();
        assert!(e.contains("no ENTRY"), "{e}");
    }
}
