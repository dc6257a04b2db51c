//! Shardy's sharding attribute: `#sdy.sharding<@mesh, [{"x"}, {"y", ?}], replicated={"z"}>`.
//!
//! Per dim: the axes that split it, `?` when the dim is open, and an optional priority `p1`.
//! `replicated={..}` names axes that must stay replicated: every axis not named is replicated in
//! our [`Sharding`] anyway, so it is accepted and not kept. Sub-axes (`"x":(1)2`) are refused.

use crate::error::IrError;
use crate::op::ReduceFn;
use crate::sharding::jax::Lexer;
use crate::sharding::spec::{DimSharding, Sharding};

const WHAT: &str = "Shardy sharding";

/// A parsed Shardy sharding: the mesh it names, the sharding, and each dim's priority.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardyText {
    /// The mesh symbol without `@`.
    pub mesh: String,
    pub sharding: Sharding,
    /// `p1` on a dim is `Some(1)`; lower numbers are stronger.
    pub priorities: Vec<Option<u32>>,
}

impl ShardyText {
    /// Parses `#sdy.sharding<@mesh, [{"x"}, {"y", ?}p1], replicated={"z"}, unreduced={"w"}>`
    /// (the `#sdy.sharding` wrapper is optional: `<@mesh, [...]>`).
    pub fn parse(s: &str) -> Result<ShardyText, IrError> {
        let mut p = Lexer {
            s,
            pos: 0,
            what: WHAT,
        };
        let _ = p.eat("#sdy.sharding");
        p.expect("<")?;
        p.expect("@")?;
        let start = p.pos;
        // By characters: a mesh name may hold non-ASCII letters (found by fuzzing).
        while let Some(c) = p.s[p.pos..]
            .chars()
            .next()
            .filter(|&c| c.is_alphanumeric() || c == '_')
        {
            p.pos += c.len_utf8();
        }
        if p.pos == start {
            return Err(p.err("a mesh name after `@`"));
        }
        let mesh = s[start..p.pos].to_string();
        p.expect(",")?;
        p.expect("[")?;
        let (mut dims, mut priorities) = (Vec::new(), Vec::new());
        if !p.eat("]") {
            loop {
                p.expect("{")?;
                let mut d = DimSharding::default();
                if !p.eat("}") {
                    loop {
                        if p.eat("?") {
                            d.open = true;
                            p.expect("}")?;
                            break;
                        }
                        d.axes.push(p.string()?);
                        if p.eat(":") {
                            return Err(
                                p.err("whole axes (sub-axes like \"x\":(1)2 are unsupported)")
                            );
                        }
                        if p.eat("}") {
                            break;
                        }
                        p.expect(",")?;
                    }
                }
                p.ws();
                let prio = p.s[p.pos..].starts_with('p')
                    && p.s[p.pos + 1..].starts_with(|c: char| c.is_ascii_digit());
                priorities.push(if prio {
                    p.pos += 1;
                    Some(u32::try_from(p.int()?).map_err(|_| p.err("a priority below 2^32"))?)
                } else {
                    None
                });
                dims.push(d);
                if p.eat("]") {
                    break;
                }
                p.expect(",")?;
            }
        }
        let mut partial = Vec::new();
        while p.eat(",") {
            let target = if p.eat("replicated") {
                None
            } else if p.eat("unreduced") {
                Some(&mut partial)
            } else {
                return Err(p.err("`replicated={..}` or `unreduced={..}`"));
            };
            p.expect("=")?;
            p.expect("{")?;
            let mut axes = Vec::new();
            if !p.eat("}") {
                loop {
                    axes.push(p.string()?);
                    if p.eat("}") {
                        break;
                    }
                    p.expect(",")?;
                }
            }
            if let Some(t) = target {
                t.extend(axes);
            }
        }
        p.expect(">")?;
        p.ws();
        if p.pos != s.len() {
            return Err(p.err("end of the sharding after `>`"));
        }
        let sharding = Sharding {
            dims,
            partial,
            partial_fn: ReduceFn::Sum,
        };
        let mut seen = std::collections::BTreeSet::new();
        if let Some(a) = sharding.used_axes().into_iter().find(|a| !seen.insert(*a)) {
            return Err(IrError::parse(
                WHAT,
                s,
                format!("axis \"{a}\" is used twice"),
            ));
        }
        Ok(ShardyText {
            mesh,
            sharding,
            priorities,
        })
    }
}

impl Sharding {
    /// Prints the Shardy attribute on mesh `@mesh_name` (`#sdy.sharding<@mesh, [{"x"}, {?}]>`),
    /// pending sums as `unreduced={..}`. A pending max or min has no Shardy form.
    pub fn to_shardy(&self, mesh_name: &str) -> Result<String, IrError> {
        if !self.partial.is_empty() && self.partial_fn != ReduceFn::Sum {
            return Err(IrError::parse(
                WHAT,
                format!("{self:?}"),
                format!("a pending {} has no Shardy form", self.partial_fn.name()),
            ));
        }
        let q = |a: &String| format!("\"{a}\"");
        let dims: Vec<String> = self
            .dims
            .iter()
            .map(|d| {
                let mut parts: Vec<String> = d.axes.iter().map(q).collect();
                if d.open {
                    parts.push("?".into());
                }
                format!("{{{}}}", parts.join(", "))
            })
            .collect();
        let mut out = format!("#sdy.sharding<@{mesh_name}, [{}]", dims.join(", "));
        if !self.partial.is_empty() {
            let u: Vec<String> = self.partial.iter().map(q).collect();
            out.push_str(&format!(", unreduced={{{}}}", u.join(", ")));
        }
        out.push('>');
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shardy_attributes_round_trip_with_open_dims_and_priorities() {
        let t = ShardyText::parse(
            "#sdy.sharding<@mesh, [{\"x\"}p1, {\"y\", ?}, {?}], replicated={\"z\"}, unreduced={\"w\"}>",
        )
        .unwrap();
        assert_eq!(t.mesh, "mesh");
        assert_eq!(t.priorities, vec![Some(1), None, None]);
        assert_eq!(
            t.sharding.dims[1],
            DimSharding {
                axes: vec!["y".into()],
                open: true
            }
        );
        assert!(t.sharding.dims[2].open && t.sharding.dims[2].axes.is_empty());
        assert_eq!(t.sharding.partial, vec!["w".to_string()]);
        let printed = t.sharding.to_shardy("mesh").unwrap();
        assert_eq!(
            printed,
            "#sdy.sharding<@mesh, [{\"x\"}, {\"y\", ?}, {?}], unreduced={\"w\"}>"
        );
        assert_eq!(ShardyText::parse(&printed).unwrap().sharding, t.sharding);
        assert_eq!(
            ShardyText::parse("<@m, []>").unwrap().sharding,
            Sharding::replicated(0)
        );
    }

    #[test]
    fn bad_shardy_text_says_what_was_expected() {
        for (bad, want) in [
            ("#sdy.sharding<@m, [{\"x\":(1)2}]>", "sub-axes"),
            ("#sdy.sharding<m, [{}]>", "`@`"),
            ("#sdy.sharding<@m, [{\"x\"}, {\"x\"}]>", "used twice"),
            ("#sdy.sharding<@m, [{x}]>", "quoted"),
            ("#sdy.sharding<@m, [{}], foo={}>", "`replicated={..}`"),
        ] {
            let e = ShardyText::parse(bad).unwrap_err().to_string();
            assert!(e.contains(want), "{bad}: {e}");
        }
    }
}
