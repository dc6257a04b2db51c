//! PyTorch DTensor placements: one per mesh axis, `[Shard(0), Replicate()]`, `Partial()`.
//!
//! Placements are per mesh axis while [`Sharding`] is per tensor dim. When several mesh axes
//! shard one dim, DTensor splits in mesh order (the first mesh axis is the major one), so a
//! sharding whose axes on a dim are in another order has no placement form.

use crate::error::IrError;
use crate::mesh::Mesh;
use crate::op::ReduceFn;
use crate::sharding::jax::Lexer;
use crate::sharding::spec::{DimSharding, Sharding};

const WHAT: &str = "DTensor placements";

/// One placement, as parsed.
enum Placement {
    Shard(usize),
    Replicate,
    Partial(ReduceFn),
}

impl Sharding {
    /// Parses placements (`[Shard(0), Replicate()]`, `(Shard(dim=1), Partial("max"))`), one per
    /// axis of `mesh`, for a value of `rank` dims. Torch's printed forms `Shard(dim=0)` and
    /// `Partial(sum)` are accepted too.
    pub fn parse_dtensor(s: &str, mesh: &Mesh, rank: usize) -> Result<Sharding, IrError> {
        let mut p = Lexer {
            s,
            pos: 0,
            what: WHAT,
        };
        let close = if p.eat("[") {
            "]"
        } else if p.eat("(") {
            ")"
        } else {
            return Err(p.err("`[` starting the placement list"));
        };
        let mut placements = Vec::new();
        if !p.eat(close) {
            loop {
                placements.push(placement(&mut p, rank)?);
                if p.eat(close) {
                    break;
                }
                p.expect(",")?;
                if p.eat(close) {
                    break;
                }
            }
        }
        p.ws();
        if p.pos != s.len() {
            return Err(p.err(&format!("end of the placements after `{close}`")));
        }
        if placements.len() != mesh.axes.len() {
            return Err(IrError::parse(
                WHAT,
                s,
                format!(
                    "{} placements given, the mesh {mesh} has {} axes (one placement per axis)",
                    placements.len(),
                    mesh.axes.len()
                ),
            ));
        }
        let mut out = Sharding::replicated(rank);
        let mut partial_fn = None;
        for (pl, axis) in placements.into_iter().zip(&mesh.axes) {
            match pl {
                Placement::Shard(d) => out.dims[d].axes.push(axis.name.clone()),
                Placement::Replicate => {}
                Placement::Partial(f) => {
                    if partial_fn.is_some_and(|g| g != f) {
                        return Err(IrError::parse(
                            WHAT,
                            s,
                            "all Partial placements must use one reduce op",
                        ));
                    }
                    partial_fn = Some(f);
                    out.partial.push(axis.name.clone());
                }
            }
        }
        out.partial_fn = partial_fn.unwrap_or(ReduceFn::Sum);
        Ok(out)
    }

    /// The placements on `mesh`, one per mesh axis (`[Shard(0), Replicate()]`). Fails when an
    /// axis is not on the mesh, or when a dim's axes are not in mesh order (DTensor cannot
    /// write that order).
    pub fn to_dtensor(&self, mesh: &Mesh) -> Result<String, IrError> {
        let err = |m: String| IrError::parse(WHAT, format!("{self:?}"), m);
        self.validate(mesh, self.rank()).map_err(err)?;
        for (d, DimSharding { axes, .. }) in self.dims.iter().enumerate() {
            let idx: Vec<usize> = axes.iter().filter_map(|a| mesh.axis_index(a)).collect();
            if idx.windows(2).any(|w| w[0] > w[1]) {
                return Err(err(format!(
                    "dim {d} is split over {axes:?}, not in mesh order ({}); DTensor always \
                     splits a dim in mesh-axis order",
                    mesh.axis_names().join(", ")
                )));
            }
        }
        let parts: Vec<String> = mesh
            .axes
            .iter()
            .map(|a| {
                if let Some(d) = self.dims.iter().position(|d| d.axes.contains(&a.name)) {
                    format!("Shard({d})")
                } else if self.partial.contains(&a.name) {
                    match self.partial_fn {
                        ReduceFn::Sum => "Partial()".to_string(),
                        f => format!("Partial(\"{}\")", f.name()),
                    }
                } else {
                    "Replicate()".to_string()
                }
            })
            .collect();
        Ok(format!("[{}]", parts.join(", ")))
    }
}

fn placement(p: &mut Lexer, rank: usize) -> Result<Placement, IrError> {
    if p.eat("Shard") {
        p.expect("(")?;
        if p.eat("dim") {
            p.expect("=")?;
        }
        let at = p.pos;
        let d = p.int()? as usize;
        if d >= rank {
            p.pos = at;
            return Err(p.err(&format!("a dim below the rank {rank}")));
        }
        p.expect(")")?;
        Ok(Placement::Shard(d))
    } else if p.eat("Replicate") {
        p.expect("(")?;
        p.expect(")")?;
        Ok(Placement::Replicate)
    } else if p.eat("Partial") {
        p.expect("(")?;
        if p.eat(")") {
            return Ok(Placement::Partial(ReduceFn::Sum));
        }
        if p.eat("reduce_op") {
            p.expect("=")?;
        }
        p.ws();
        let at = p.pos;
        let op = if p.s[p.pos..].starts_with(['\'', '"']) {
            p.string()?
        } else {
            let start = p.pos;
            while p.s[p.pos..].starts_with(|c: char| c.is_ascii_alphabetic()) {
                p.pos += 1;
            }
            p.s[start..p.pos].to_string()
        };
        let f = match op.as_str() {
            "sum" => ReduceFn::Sum,
            "max" => ReduceFn::Max,
            "min" => ReduceFn::Min,
            _ => {
                p.pos = at;
                return Err(p.err("reduce op \"sum\", \"max\" or \"min\""));
            }
        };
        p.expect(")")?;
        Ok(Placement::Partial(f))
    } else {
        Err(p.err("`Shard(d)`, `Replicate()` or `Partial()`"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mesh() -> Mesh {
        "dp=2,tp=4".parse().unwrap()
    }

    #[test]
    fn placements_map_mesh_axes_to_dims() {
        let s = Sharding::parse_dtensor("[Shard(0), Replicate()]", &mesh(), 2).unwrap();
        assert_eq!(s, Sharding::from_dims(&[&["dp"], &[]]));
        assert_eq!(s.to_dtensor(&mesh()).unwrap(), "[Shard(0), Replicate()]");
        let s = Sharding::parse_dtensor("(Shard(dim=1), Shard(1))", &mesh(), 2).unwrap();
        assert_eq!(s, Sharding::from_dims(&[&[], &["dp", "tp"]]));
        assert_eq!(s.to_dtensor(&mesh()).unwrap(), "[Shard(1), Shard(1)]");
        let s = Sharding::parse_dtensor("[Replicate(), Partial()]", &mesh(), 1).unwrap();
        assert_eq!(s.partial, vec!["tp".to_string()]);
        assert_eq!(s.to_dtensor(&mesh()).unwrap(), "[Replicate(), Partial()]");
        let s = Sharding::parse_dtensor("[Partial(max), Partial(\"max\")]", &mesh(), 1).unwrap();
        assert_eq!(s.partial_fn, ReduceFn::Max);
        assert_eq!(
            s.to_dtensor(&mesh()).unwrap(),
            "[Partial(\"max\"), Partial(\"max\")]"
        );
    }

    #[test]
    fn axis_order_against_mesh_order_cannot_be_written() {
        let s = Sharding::from_dims(&[&["tp", "dp"]]);
        let e = s.to_dtensor(&mesh()).unwrap_err().to_string();
        assert!(e.contains("not in mesh order"), "{e}");
    }

    #[test]
    fn bad_placements_say_what_was_expected() {
        for (bad, want) in [
            ("[Shard(0)]", "1 placements given"),
            ("[Shard(2), Replicate()]", "below the rank 2"),
            ("[Split(0), Replicate()]", "`Shard(d)`"),
            ("[Partial(\"avg\"), Replicate()]", "reduce op"),
            ("[Partial(\"max\"), Partial()]", "one reduce op"),
            ("Shard(0)", "`[`"),
        ] {
            let e = Sharding::parse_dtensor(bad, &mesh(), 2)
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{bad}: {e}");
        }
    }
}
