//! XLA's HLO sharding text (`{devices=[2,1,4]<=[8] last_tile_dim_replicate}`): the type, its
//! parser and printer, and comparison by meaning.

use std::fmt;

use crate::error::IrError;
use crate::sharding::tile::{join, TileDevices};

/// The kind of a trailing tile dim that does not split data (XLA's subgroup types).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Subgroup {
    /// The devices along this dim hold the same data.
    Replicated,
    /// The devices along this dim run hand-partitioned code.
    Manual,
}

impl Subgroup {
    fn name(self) -> &'static str {
        match self {
            Subgroup::Replicated => "replicated",
            Subgroup::Manual => "manual",
        }
    }
}

/// A tiled sharding: the tile shape (one entry per data dim, then one per subgroup dim) and the
/// device at each tile.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Tiled {
    /// Tiles per dim: the data dims, then `subgroups.len()` trailing subgroup dims.
    pub tile: Vec<u64>,
    pub devices: TileDevices,
    /// Kinds of the trailing subgroup dims (`last_tile_dim_replicate` is `[Replicated]`).
    pub subgroups: Vec<Subgroup>,
}

impl Tiled {
    /// The number of data dims (the tensor's rank).
    pub fn data_rank(&self) -> usize {
        self.tile.len() - self.subgroups.len()
    }
}

/// XLA's `shard_as N` / `shard_like N` groups: values that must share one sharding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ShardGroup {
    /// `shard_as` (same sharding) rather than `shard_like` (a hint).
    pub shard_as: bool,
    pub id: u64,
}

/// An XLA HLO sharding, as written in `sharding={...}` attributes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum HloSharding {
    /// Every device holds the whole value.
    Replicated,
    /// Hand-partitioned: each device holds its own piece, not described.
    Manual,
    /// The whole value lives on one device.
    Maximal { device: u32 },
    /// Not yet decided (only meaningful with a shard group).
    Unknown,
    /// Split into tiles over devices.
    Tiled(Tiled),
    /// One sharding per element of a tuple-shaped value.
    Tuple(Vec<HloSharding>),
    /// A sharding with a `shard_as`/`shard_like` group.
    Grouped(Box<HloSharding>, ShardGroup),
}

const WHAT: &str = "HLO sharding";

impl HloSharding {
    /// Parses XLA's text form, e.g. `{devices=[2,1]0,1}`, `{devices=[4,2]<=[8]}`,
    /// `{{replicated}, {maximal device=0}}`. `metadata={...}` is accepted and ignored.
    pub fn parse(s: &str) -> Result<HloSharding, IrError> {
        let mut p = Parser { s, pos: 0 };
        let out = p.sharding()?;
        p.ws();
        if p.pos != s.len() {
            return Err(p.err("end of the sharding"));
        }
        Ok(out)
    }

    /// Whether `self` and `other` place data on devices the same way: an iota form equals its
    /// explicit expansion, device order within a replicated group does not matter, a tiling
    /// with only replicated subgroups and one tile per data dim is replicated, and shard groups
    /// are ignored.
    pub fn equivalent(&self, other: &HloSharding) -> bool {
        canonical(self) == canonical(other)
    }

    /// The sharding without its shard group, if any.
    pub fn ungrouped(&self) -> &HloSharding {
        match self {
            HloSharding::Grouped(s, _) => s.ungrouped(),
            s => s,
        }
    }
}

/// A normal form for [`HloSharding::equivalent`].
#[derive(PartialEq, Debug)]
enum Canon {
    Replicated,
    Manual,
    Maximal(u32),
    Unknown,
    Tuple(Vec<Canon>),
    /// Data tile shape, manual subgroup size, and for each (data tile, manual index) in row-major
    /// order the sorted devices that hold it.
    Tiled(Vec<u64>, u64, Vec<Vec<u32>>),
}

fn canonical(s: &HloSharding) -> Canon {
    match s {
        HloSharding::Replicated => Canon::Replicated,
        HloSharding::Manual => Canon::Manual,
        HloSharding::Maximal { device } => Canon::Maximal(*device),
        HloSharding::Unknown => Canon::Unknown,
        HloSharding::Tuple(v) => Canon::Tuple(v.iter().map(canonical).collect()),
        HloSharding::Grouped(s, _) => canonical(s),
        HloSharding::Tiled(t) => {
            let r = t.data_rank();
            let data: Vec<u64> = t.tile[..r].to_vec();
            let sub = &t.tile[r..];
            let manual: u64 = sub
                .iter()
                .zip(&t.subgroups)
                .filter(|(_, k)| **k == Subgroup::Manual)
                .map(|(s, _)| *s)
                .product();
            if manual == 1 && data.iter().all(|&d| d == 1) {
                return Canon::Replicated;
            }
            let devs = t.devices.expand();
            let groups = (data.iter().product::<u64>() * manual) as usize;
            let mut out = vec![Vec::new(); groups];
            // Position i over (data dims, subgroup dims): its data tile and manual index.
            let mut idx = vec![0u64; t.tile.len()];
            for &d in &devs {
                let data_lin = idx[..r]
                    .iter()
                    .zip(&data)
                    .fold(0, |acc, (i, s)| acc * s + i);
                let man_lin = idx[r..]
                    .iter()
                    .zip(sub)
                    .zip(&t.subgroups)
                    .filter(|(_, k)| **k == Subgroup::Manual)
                    .fold(0, |acc, ((i, s), _)| acc * s + i);
                out[(data_lin * manual + man_lin) as usize].push(d);
                for k in (0..idx.len()).rev() {
                    idx[k] += 1;
                    if idx[k] < t.tile[k] {
                        break;
                    }
                    idx[k] = 0;
                }
            }
            for g in &mut out {
                g.sort_unstable();
            }
            Canon::Tiled(data, manual, out)
        }
    }
}

impl fmt::Display for HloSharding {
    /// XLA's own text form (`{devices=[2,1,4]<=[8] last_tile_dim_replicate}`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        self.fmt_inner(f)?;
        f.write_str("}")
    }
}

impl HloSharding {
    fn fmt_inner(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HloSharding::Replicated => f.write_str("replicated"),
            HloSharding::Manual => f.write_str("manual"),
            HloSharding::Unknown => f.write_str("unknown"),
            HloSharding::Maximal { device } => write!(f, "maximal device={device}"),
            HloSharding::Tuple(v) => {
                for (i, s) in v.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{s}")?;
                }
                Ok(())
            }
            HloSharding::Grouped(s, g) => {
                s.fmt_inner(f)?;
                let kind = if g.shard_as { "shard_as" } else { "shard_like" };
                write!(f, " {kind} {}", g.id)
            }
            HloSharding::Tiled(t) => {
                write!(f, "devices=[{}]{}", join(&t.tile), t.devices)?;
                if t.subgroups == [Subgroup::Replicated] {
                    f.write_str(" last_tile_dim_replicate")?;
                } else if !t.subgroups.is_empty() {
                    let names: Vec<&str> = t.subgroups.iter().map(|k| k.name()).collect();
                    write!(f, " last_tile_dims={{{}}}", names.join(", "))?;
                }
                Ok(())
            }
        }
    }
}

/// A small recursive-descent parser over the sharding text.
struct Parser<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn err(&self, expected: &str) -> IrError {
        let rest: String = self
            .s
            .get(self.pos..)
            .unwrap_or("")
            .chars()
            .take(20)
            .collect();
        IrError::parse(
            WHAT,
            self.s,
            format!(
                "expected {expected} at offset {} (found `{rest}`)",
                self.pos
            ),
        )
    }

    fn ws(&mut self) {
        let rest = &self.s[self.pos..];
        self.pos += rest.len() - rest.trim_start().len();
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

    fn word(&mut self) -> &'a str {
        self.ws();
        let start = self.pos;
        while self.s[self.pos..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_') {
            self.pos += 1;
        }
        &self.s[start..self.pos]
    }

    fn int(&mut self) -> Result<u64, IrError> {
        self.ws();
        let start = self.pos;
        while self.s[self.pos..].starts_with(|c: char| c.is_ascii_digit()) {
            self.pos += 1;
        }
        self.s[start..self.pos]
            .parse()
            .map_err(|_| self.err_at(start, "an unsigned integer"))
    }

    fn err_at(&self, pos: usize, expected: &str) -> IrError {
        Parser { s: self.s, pos }.err(expected)
    }

    fn int_list(&mut self, open: &str, close: &str) -> Result<Vec<u64>, IrError> {
        self.expect(open)?;
        let mut v = Vec::new();
        if self.eat(close) {
            return Ok(v);
        }
        loop {
            v.push(self.int()?);
            if self.eat(close) {
                return Ok(v);
            }
            self.expect(",")?;
        }
    }

    /// Skips a balanced `{...}` (metadata), honouring quoted strings.
    fn skip_braced(&mut self) -> Result<(), IrError> {
        self.expect("{")?;
        let mut depth = 1;
        let mut in_str = false;
        let bytes = self.s.as_bytes();
        while self.pos < bytes.len() {
            let c = bytes[self.pos];
            self.pos += 1;
            match c {
                b'\\' if in_str => self.pos += 1,
                b'"' => in_str = !in_str,
                b'{' if !in_str => depth += 1,
                b'}' if !in_str => {
                    depth -= 1;
                    if depth == 0 {
                        return Ok(());
                    }
                }
                _ => {}
            }
        }
        Err(self.err("`}` closing metadata"))
    }

    fn sharding(&mut self) -> Result<HloSharding, IrError> {
        self.expect("{")?;
        self.ws();
        if self.s[self.pos..].starts_with('{') {
            let mut v = vec![self.sharding()?];
            while self.eat(",") {
                v.push(self.sharding()?);
            }
            self.expect("}")?;
            return Ok(HloSharding::Tuple(v));
        }
        if self.eat("}") {
            // `{}` is XLA's empty tuple sharding.
            return Ok(HloSharding::Tuple(Vec::new()));
        }
        let head = self.word();
        let mut s = match head {
            "replicated" => HloSharding::Replicated,
            "manual" => HloSharding::Manual,
            "unknown" => HloSharding::Unknown,
            "maximal" => {
                self.expect("device")?;
                self.expect("=")?;
                let d = self.int()?;
                let d = u32::try_from(d).map_err(|_| self.err("a device id below 2^32"))?;
                HloSharding::Maximal { device: d }
            }
            "devices" => {
                self.expect("=")?;
                HloSharding::Tiled(self.tiled()?)
            }
            _ => {
                return Err(self.err(
                    "`replicated`, `manual`, `maximal device=N`, `devices=[..]..`, `unknown` or a tuple",
                ))
            }
        };
        // Trailing attributes, in any order.
        loop {
            self.ws();
            if self.eat("}") {
                return Ok(s);
            }
            let at = self.pos;
            match self.word() {
                "last_tile_dim_replicate" => s = self.add_subgroups(s, vec![Subgroup::Replicated], at)?,
                "last_tile_dims" => {
                    self.expect("=")?;
                    self.expect("{")?;
                    let mut kinds = Vec::new();
                    loop {
                        let k = match self.word() {
                            "replicated" => Subgroup::Replicated,
                            "manual" => Subgroup::Manual,
                            _ => return Err(self.err("`replicated` or `manual`")),
                        };
                        kinds.push(k);
                        if self.eat("}") {
                            break;
                        }
                        self.expect(",")?;
                    }
                    s = self.add_subgroups(s, kinds, at)?;
                }
                "metadata" => {
                    self.expect("=")?;
                    self.skip_braced()?;
                }
                w @ ("shard_as" | "shard_like") => {
                    let id = self.int()?;
                    let g = ShardGroup {
                        shard_as: w == "shard_as",
                        id,
                    };
                    s = HloSharding::Grouped(Box::new(s), g);
                }
                _ => {
                    return Err(self.err_at(
                        at,
                        "`last_tile_dim_replicate`, `last_tile_dims={..}`, `metadata={..}`, `shard_as N`, `shard_like N` or `}`",
                    ))
                }
            }
        }
    }

    fn add_subgroups(
        &self,
        s: HloSharding,
        kinds: Vec<Subgroup>,
        at: usize,
    ) -> Result<HloSharding, IrError> {
        match s {
            HloSharding::Tiled(mut t) if t.subgroups.is_empty() && kinds.len() <= t.tile.len() => {
                t.subgroups = kinds;
                Ok(HloSharding::Tiled(t))
            }
            _ => Err(self.err_at(
                at,
                "subgroup dims only once, on a `devices=` sharding with enough tile dims",
            )),
        }
    }

    /// `[2,1,4]0,1,2,...` or `[2,1,4]<=[8]` or `[2,2]<=[2,2]T(1,0)`.
    fn tiled(&mut self) -> Result<Tiled, IrError> {
        let tile = self.int_list("[", "]")?;
        if tile.is_empty() || tile.contains(&0) {
            return Err(self.err("a tile shape of positive sizes before this point"));
        }
        let n = tile
            .iter()
            .try_fold(1u64, |a, &t| a.checked_mul(t))
            .filter(|&n| n <= 1 << 20)
            .ok_or_else(|| self.err("a tile shape of at most 2^20 tiles"))?;
        let devices = if self.eat("<=") {
            let reshape = self.int_list("[", "]")?;
            let perm: Vec<usize> = if self.eat("T") {
                self.int_list("(", ")")?
                    .into_iter()
                    .map(|p| p as usize)
                    .collect()
            } else {
                (0..reshape.len()).collect()
            };
            let mut sorted = perm.clone();
            sorted.sort_unstable();
            if sorted != (0..reshape.len()).collect::<Vec<_>>() {
                return Err(self.err("a transpose `T(..)` that permutes the iota dims"));
            }
            if reshape.iter().try_fold(1u64, |a, &t| a.checked_mul(t)) != Some(n) {
                return Err(self.err(&format!("iota dims whose product is the tile count {n}")));
            }
            TileDevices::Iota { reshape, perm }
        } else {
            let mut d = Vec::new();
            loop {
                let v = self.int()?;
                d.push(u32::try_from(v).map_err(|_| self.err("a device id below 2^32"))?);
                self.ws();
                let save = self.pos;
                if !self.eat(",") {
                    break;
                }
                // A comma followed by a non-digit ends the list (a tuple separator).
                self.ws();
                if !self.s[self.pos..].starts_with(|c: char| c.is_ascii_digit()) {
                    self.pos = save;
                    break;
                }
            }
            if d.len() as u64 != n {
                return Err(self.err(&format!(
                    "{n} device ids for tile shape [{}], found {}",
                    join(&tile),
                    d.len()
                )));
            }
            let mut s = d.clone();
            s.sort_unstable();
            if s.windows(2).any(|w| w[0] == w[1]) {
                return Err(self.err("distinct device ids"));
            }
            TileDevices::Explicit(d)
        };
        Ok(Tiled {
            tile,
            devices,
            subgroups: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt(s: &str) -> String {
        HloSharding::parse(s).unwrap().to_string()
    }

    #[test]
    fn every_form_prints_as_xla_writes_it() {
        assert_eq!(rt("{replicated}"), "{replicated}");
        assert_eq!(rt("{maximal device=3}"), "{maximal device=3}");
        assert_eq!(rt("{manual}"), "{manual}");
        assert_eq!(rt("{devices=[2,1]0,1}"), "{devices=[2,1]0,1}");
        assert_eq!(rt("{devices=[4,2]<=[8]}"), "{devices=[4,2]<=[8]}");
        assert_eq!(
            rt("{devices=[2,2]<=[2,2]T(1,0)}"),
            "{devices=[2,2]<=[2,2]T(1,0)}"
        );
        assert_eq!(
            rt("{devices=[2,1,2]0,1,2,3 last_tile_dims={replicated}}"),
            "{devices=[2,1,2]0,1,2,3 last_tile_dim_replicate}"
        );
        assert_eq!(
            rt("{devices=[1,2,2,2]<=[8] last_tile_dims={manual,replicated}}"),
            "{devices=[1,2,2,2]<=[8] last_tile_dims={manual, replicated}}"
        );
        assert_eq!(
            rt("{{replicated}, {devices=[1,4] 0,1,2,3 metadata={op_name=\"a}\"}}}"),
            "{{replicated}, {devices=[1,4]0,1,2,3}}"
        );
        assert_eq!(rt("{unknown shard_as 1}"), "{unknown shard_as 1}");
    }

    #[test]
    fn iota_equals_its_expansion_and_replica_order_is_free() {
        let a = HloSharding::parse("{devices=[2,2]<=[2,2]T(1,0)}").unwrap();
        let b = HloSharding::parse("{devices=[2,2]0,2,1,3}").unwrap();
        let c = HloSharding::parse("{devices=[2,2]0,1,2,3}").unwrap();
        assert!(a.equivalent(&b));
        assert!(!a.equivalent(&c));
        let p = HloSharding::parse("{devices=[2,2]0,1,2,3 last_tile_dim_replicate}").unwrap();
        let q = HloSharding::parse("{devices=[2,2]1,0,3,2 last_tile_dim_replicate}").unwrap();
        assert!(p.equivalent(&q));
        let r = HloSharding::parse("{devices=[1,1,4]<=[4] last_tile_dim_replicate}").unwrap();
        assert!(r.equivalent(&HloSharding::Replicated));
    }

    #[test]
    fn malformed_text_says_what_was_expected() {
        for (bad, want) in [
            ("{devices=[2,2]0,1,2}", "4 device ids"),
            ("{devices=[2]<=[3]}", "product is the tile count 2"),
            ("{devices=[2,2]<=[2,2]T(0,0)}", "permutes"),
            ("{sharded}", "`replicated`"),
            ("{replicated", "`}`"),
            ("{devices=[2]0,0}", "distinct"),
            ("{devices=[2]0,1 foo}", "last_tile_dim_replicate"),
        ] {
            let e = HloSharding::parse(bad).unwrap_err().to_string();
            assert!(e.contains(want), "{bad}: {e}");
        }
    }
}
