//! Every sharding notation parser (JAX `P(...)`, DTensor placements, XLA's HLO sharding text,
//! Shardy's text) returns an error rather than panic, and what parses converts without panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shardc_ir::sharding::HloSharding;
use shardc_ir::{Mesh, Sharding};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mesh = Mesh::new(&[("dp", 2), ("tp", 4)]).expect("a valid mesh");
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
    let _ = shardc_ir::sharding::ShardyText::parse(text);
});
