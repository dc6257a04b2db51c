//! The graph JSON reader returns an error rather than panic; a graph it accepts verifies and
//! writes back.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(g) = shardc_ir::from_json(text) {
        let _ = shardc_ir::verify(&g);
        let _ = shardc_ir::to_json(&g);
    }
});
