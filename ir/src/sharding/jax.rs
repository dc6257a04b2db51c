//! JAX's `PartitionSpec` notation: `P('dp', None)`, `P(('dp', 'tp'), None)`, `P()`,
//! `P('x', unreduced={'y'})`.

use crate::error::IrError;
use crate::op::ReduceFn;
use crate::sharding::spec::{DimSharding, Sharding};

const WHAT: &str = "JAX PartitionSpec";

impl Sharding {
    /// Parses a `PartitionSpec` for a value of `rank` dims; dims the spec does not mention are
    /// replicated, as in JAX. `unreduced={'y'}` marks pending-sum axes.
    pub fn parse_jax(s: &str, rank: usize) -> Result<Sharding, IrError> {
        let mut p = Lexer {
            s,
            pos: 0,
            what: WHAT,
        };
        let err = |p: &Lexer, m: &str| p.err(m);
        if !(p.eat("PartitionSpec") || p.eat("P")) {
            return Err(err(&p, "`P(` or `PartitionSpec(`"));
        }
        p.expect("(")?;
        let mut dims = Vec::new();
        let mut partial = Vec::new();
        if !p.eat(")") {
            loop {
                if p.eat("unreduced") {
                    p.expect("=")?;
                    p.expect("{")?;
                    if !p.eat("}") {
                        loop {
                            partial.push(p.string()?);
                            if p.eat("}") {
                                break;
                            }
                            p.expect(",")?;
                        }
                    }
                } else if !partial.is_empty() {
                    return Err(err(&p, "nothing after `unreduced={..}` but `)`"));
                } else if p.eat("None") {
                    dims.push(DimSharding::replicated());
                } else if p.eat("(") {
                    let mut axes = Vec::new();
                    if !p.eat(")") {
                        loop {
                            axes.push(p.string()?);
                            // A trailing comma is allowed, as in Python `('dp',)`.
                            if p.eat(")") {
                                break;
                            }
                            p.expect(",")?;
                            if p.eat(")") {
                                break;
                            }
                        }
                    }
                    dims.push(DimSharding { axes, open: false });
                } else {
                    let a = p.string()?;
                    dims.push(DimSharding {
                        axes: vec![a],
                        open: false,
                    });
                }
                if p.eat(")") {
                    break;
                }
                p.expect(",")?;
                if p.eat(")") {
                    break;
                }
            }
        }
        p.ws();
        if p.pos != s.len() {
            return Err(err(&p, "end of the spec after `)`"));
        }
        if dims.len() > rank {
            return Err(IrError::parse(
                WHAT,
                s,
                format!(
                    "the spec has {} entries, the value has rank {rank}",
                    dims.len()
                ),
            ));
        }
        dims.resize(rank, DimSharding::replicated());
        let out = Sharding {
            dims,
            partial,
            partial_fn: ReduceFn::Sum,
        };
        let mut seen = std::collections::BTreeSet::new();
        if let Some(a) = out.used_axes().into_iter().find(|a| !seen.insert(*a)) {
            return Err(IrError::parse(WHAT, s, format!("axis '{a}' is used twice")));
        }
        Ok(out)
    }

    /// Prints the `PartitionSpec`, one entry per dim (`P('dp', None)`, `P(('dp', 'tp'))`);
    /// pending sums print as `unreduced={'tp'}`. Open dims print closed (JAX has no `?`). A
    /// pending max or min has no JAX form.
    pub fn to_jax(&self) -> Result<String, IrError> {
        if !self.partial.is_empty() && self.partial_fn != ReduceFn::Sum {
            return Err(IrError::parse(
                WHAT,
                format!("{self:?}"),
                format!(
                    "a pending {} over {:?} has no PartitionSpec form (unreduced means a sum)",
                    self.partial_fn.name(),
                    self.partial
                ),
            ));
        }
        let q = |a: &String| format!("'{a}'");
        let mut parts: Vec<String> = self
            .dims
            .iter()
            .map(|d| match d.axes.len() {
                0 => "None".to_string(),
                1 => q(&d.axes[0]),
                _ => format!("({})", d.axes.iter().map(q).collect::<Vec<_>>().join(", ")),
            })
            .collect();
        if !self.partial.is_empty() {
            let u: Vec<String> = self.partial.iter().map(q).collect();
            parts.push(format!("unreduced={{{}}}", u.join(", ")));
        }
        Ok(format!("P({})", parts.join(", ")))
    }
}

/// A tiny lexer over Python-literal-like notation (shared with the DTensor parser).
pub(crate) struct Lexer<'a> {
    pub s: &'a str,
    pub pos: usize,
    /// What is being parsed, for error messages.
    pub what: &'static str,
}

impl Lexer<'_> {
    pub fn err(&self, expected: &str) -> IrError {
        let rest: String = self
            .s
            .get(self.pos..)
            .unwrap_or("")
            .chars()
            .take(20)
            .collect();
        IrError::parse(
            self.what,
            self.s,
            format!(
                "expected {expected} at offset {} (found `{rest}`)",
                self.pos
            ),
        )
    }

    pub fn ws(&mut self) {
        let rest = &self.s[self.pos..];
        self.pos += rest.len() - rest.trim_start().len();
    }

    /// Consumes `tok` if it comes next; a word token must not run on into more identifier text.
    pub fn eat(&mut self, tok: &str) -> bool {
        self.ws();
        let rest = &self.s[self.pos..];
        if !rest.starts_with(tok) {
            return false;
        }
        let word = tok.chars().all(|c| c.is_alphanumeric() || c == '_');
        if word && rest[tok.len()..].starts_with(|c: char| c.is_alphanumeric() || c == '_') {
            return false;
        }
        self.pos += tok.len();
        true
    }

    pub fn expect(&mut self, tok: &str) -> Result<(), IrError> {
        if self.eat(tok) {
            Ok(())
        } else {
            Err(self.err(&format!("`{tok}`")))
        }
    }

    pub fn int(&mut self) -> Result<u64, IrError> {
        self.ws();
        let start = self.pos;
        while self.s[self.pos..].starts_with(|c: char| c.is_ascii_digit()) {
            self.pos += 1;
        }
        let v = self.s[start..self.pos].parse();
        v.map_err(|_| {
            self.pos = start;
            self.err("a non-negative integer")
        })
    }

    /// A quoted string, `'x'` or `"x"`, holding an identifier.
    pub fn string(&mut self) -> Result<String, IrError> {
        self.ws();
        let q = match self.s[self.pos..].chars().next() {
            Some(c @ ('\'' | '"')) => c,
            _ => return Err(self.err("a quoted mesh axis name like 'dp', or None")),
        };
        let start = self.pos + 1;
        let end = self.s[start..]
            .find(q)
            .map(|e| start + e)
            .ok_or_else(|| self.err("a closing quote"))?;
        let name = &self.s[start..end];
        if name.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || c == '_') {
            return Err(self.err("an identifier between the quotes"));
        }
        self.pos = end + 1;
        Ok(name.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_specs_parse_with_trailing_dims_replicated() {
        let s = Sharding::parse_jax("P('dp')", 2).unwrap();
        assert_eq!(s, Sharding::from_dims(&[&["dp"], &[]]));
        assert_eq!(s.to_jax().unwrap(), "P('dp', None)");
        let s = Sharding::parse_jax("PartitionSpec((\"dp\", 'tp'), None)", 2).unwrap();
        assert_eq!(s, Sharding::from_dims(&[&["dp", "tp"], &[]]));
        assert_eq!(s.to_jax().unwrap(), "P(('dp', 'tp'), None)");
        assert_eq!(
            Sharding::parse_jax("P()", 0).unwrap().to_jax().unwrap(),
            "P()"
        );
        let s = Sharding::parse_jax("P('x', unreduced={'y'})", 1).unwrap();
        assert_eq!(s.partial, vec!["y".to_string()]);
        assert_eq!(s.to_jax().unwrap(), "P('x', unreduced={'y'})");
        assert_eq!(
            Sharding::parse_jax("P(('dp',), None,)", 2).unwrap(),
            Sharding::from_dims(&[&["dp"], &[]])
        );
    }

    #[test]
    fn bad_partition_specs_say_what_was_expected() {
        for (bad, rank, want) in [
            ("P('dp', None, None)", 2, "rank 2"),
            ("P(dp)", 1, "quoted mesh axis"),
            ("Q('dp')", 1, "`P(`"),
            ("P('dp', 'dp')", 2, "used twice"),
            ("P('dp'", 1, "`,`"),
            ("P('d-p')", 1, "identifier"),
            ("P('dp') x", 1, "end of the spec"),
        ] {
            let e = Sharding::parse_jax(bad, rank).unwrap_err().to_string();
            assert!(e.contains(want), "{bad}: {e}");
        }
        let mut s = Sharding::replicated(1);
        s.partial = vec!["tp".into()];
        s.partial_fn = ReduceFn::Max;
        assert!(s.to_jax().is_err());
    }
}
