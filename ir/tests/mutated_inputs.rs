//! A seeded property test of every text reader (the cargo-fuzz targets under `fuzz/` run the
//! same calls unseeded and longer): inputs mutated from real ones (jax's HLO and StableHLO,
//! sharding notations, a graph's JSON) never panic and every read finishes (bounded by the suite's
//! time; the inputs are small, so a hang or a huge allocation would show as a timeout).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;

use shardc_ir::hlo::{import, print_with_shardings};
use shardc_ir::sharding::{HloSharding, ShardyText};
use shardc_ir::{from_json, to_json, verify, Mesh, Sharding};

/// xorshift64*: a fixed sequence, so a failure reproduces from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Bytes that matter to the grammars, so mutations reach past the first token.
const TOKENS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    "(",
    ")",
    ",",
    "=",
    "x",
    "0",
    "1",
    "-1",
    "99999999999999999999",
    "%",
    "\"",
    "ROOT ",
    "tuple",
    "parameter(0)",
    "f32[2,3]",
    "u32[]",
    "while",
    "call",
    "<=[8]",
    "devices=[2,1]0,1",
    "last_tile_dim_replicate",
    "{manual}",
    "stablehlo.while",
    "tensor<2x3xf32>",
    "tensor<ui32>",
    "%arg0",
    "^bb0(",
    "sdy.manual_computation",
    "#sdy.sharding<@mesh, [{\"dp\"}]>",
    "dense<1>",
    "P(",
    "'dp'",
    "None",
    "Shard(0)",
    "Replicate()",
    "\"op\"",
    ":",
    "null",
    "\u{0}",
    "é",
];

fn mutate(rng: &mut Rng, seed: &str) -> String {
    let mut b: Vec<u8> = seed.as_bytes().to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(b.len() + 1);
        match rng.below(5) {
            0 if !b.is_empty() => {
                let end = (at + 1 + rng.below(16)).min(b.len());
                b.drain(at.min(end)..end);
            }
            1 => {
                let t = TOKENS[rng.below(TOKENS.len())];
                b.splice(at..at, t.bytes());
            }
            2 if at < b.len() => b[at] = (rng.next() & 0x7f) as u8,
            3 if !b.is_empty() => {
                // Duplicate a slice (nesting, repeated attributes).
                let from = rng.below(b.len());
                let end = (from + 1 + rng.below(64)).min(b.len());
                let piece: Vec<u8> = b[from..end].to_vec();
                b.splice(at..at, piece);
            }
            _ => b.truncate(at),
        }
    }
    String::from_utf8_lossy(&b).into_owned()
}

fn no_panic(what: &str, seed: u64, input: &str, f: impl FnOnce()) {
    if catch_unwind(AssertUnwindSafe(f)).is_err() {
        panic!("{what} panicked (rng seed {seed}) on:\n{input}");
    }
}

fn read(name: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/data/jax")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn hlo(text: &str) {
    if let Ok(imp) = import(text) {
        let _ = print_with_shardings(&imp, &imp.shardings);
    }
}

fn stablehlo(text: &str) {
    if let Ok(imp) = shardc_ir::stablehlo::import(text) {
        let _ = print_with_shardings(&imp, &imp.shardings);
    }
}

fn notations(text: &str) {
    let mesh = Mesh::new(&[("dp", 2), ("tp", 4)]).unwrap();
    for rank in 0..4 {
        if let Ok(s) = Sharding::parse_jax(text, rank) {
            let _ = s.to_jax();
        }
        let _ = Sharding::parse_dtensor(text, &mesh, rank);
    }
    if let Ok(h) = HloSharding::parse(text) {
        let _ = h.to_string();
        for rank in 0..4 {
            let _ = h.to_sharding(&mesh, rank);
        }
    }
    let _ = ShardyText::parse(text);
}

fn json(text: &str) {
    if let Ok(g) = from_json(text) {
        let _ = verify(&g);
        let _ = to_json(&g);
    }
}

#[test]
fn mutated_hlo_never_panics() {
    // Small modules with while loops, u32 threefry, calls of tuples, reduce-window.
    let seeds = [
        read("mlp_dp.hlo"),
        read("moe_top2.hlo"),
        read("softplus_cumsum.hlo"),
        read("shard_map_matmul.hlo"),
        // rng-bit-generator (Philox, Threefry) and 32/64-bit bitcast-converts.
        read("rbg_bits.hlo"),
    ];
    let mut rng = Rng(0x5eed_0001);
    for k in 0..2000u64 {
        let s = &seeds[(k as usize) % seeds.len()];
        let m = mutate(&mut rng, s);
        no_panic("hlo::import", k, &m, || hlo(&m));
    }
}

#[test]
fn mutated_stablehlo_never_panics() {
    // Shardy (`sdy.mesh`, `#sdy.sharding`) and GSPMD (`mhlo.sharding`) forms; loops, threefry,
    // top-k, reduce-window, and a `sdy.manual_computation`.
    let seeds = [
        read("moe_top2.mlir"),
        read("softplus_cumsum.gspmd.mlir"),
        read("mlp_dropout.mlir"),
        read("shard_map_matmul.mlir"),
        read("rbg_bits.mlir"),
    ];
    let mut rng = Rng(0x5eed_0004);
    for k in 0..2000u64 {
        let s = &seeds[(k as usize) % seeds.len()];
        let m = mutate(&mut rng, s);
        no_panic("stablehlo::import", k, &m, || stablehlo(&m));
    }
}

#[test]
fn mutated_sharding_notations_never_panic() {
    let seeds = [
        "P('dp', None)",
        "P(('dp', 'tp'), None, 'tp')",
        "[Shard(0), Replicate()]",
        "{devices=[2,1,4]<=[8] last_tile_dim_replicate}",
        "{devices=[4,2]<=[2,4]T(1,0)}",
        "{{replicated}, {maximal device=3}, {devices=[2]0,1}}",
        "{devices=[2,2,2]<=[8] last_tile_dims={manual, replicated}}",
        "#sdy.sharding<@mesh, [{\"dp\"}, {\"tp\", ?}]>",
    ];
    // Found by the cargo-fuzz target: a mesh name with a two-byte letter.
    notations("<@mæsh, [{}]>");
    let mut rng = Rng(0x5eed_0002);
    for k in 0..12000u64 {
        let m = mutate(&mut rng, seeds[(k as usize) % seeds.len()]);
        no_panic("sharding notations", k, &m, || notations(&m));
    }
}

#[test]
fn mutated_graph_json_never_panics() {
    let hlo = import(&read("moe_top2.hlo")).unwrap();
    let seed = to_json(&hlo.graph);
    let mut rng = Rng(0x5eed_0003);
    for k in 0..1200u64 {
        let m = mutate(&mut rng, &seed);
        no_panic("from_json", k, &m, || json(&m));
    }
}
