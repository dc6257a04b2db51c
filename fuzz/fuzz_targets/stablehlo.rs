//! The StableHLO / Shardy text reader never panics or hangs on any input: it parses,
//! converts and imports, and prints back what it imported.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(imp) = shardc_ir::stablehlo::import(text) {
        let _ = shardc_ir::hlo::print_with_shardings(&imp, &imp.shardings);
    }
});
