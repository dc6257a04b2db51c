//! Every sharding string of the XLA test corpus (`../shared/xla-corpus/*.dev.jsonl`) parses,
//! prints back in XLA's form, and survives the trip through the axis-based `Sharding` and the
//! JAX and DTensor notations.

mod common;

use shardc_ir::sharding::{HloSharding, Sharding, Subgroup};

/// The text of every `sharding={...}` attribute in an HLO module, braces balanced.
fn sharding_attributes(hlo: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = hlo;
    while let Some(i) = rest.find("sharding={") {
        let body = &rest[i + "sharding=".len()..];
        let mut depth = 0;
        let mut in_str = false;
        let mut end = None;
        for (k, c) in body.char_indices() {
            match c {
                '"' => in_str = !in_str,
                '{' if !in_str => depth += 1,
                '}' if !in_str => {
                    depth -= 1;
                    if depth == 0 {
                        end = Some(k + 1);
                        break;
                    }
                }
                _ => {}
            }
        }
        let end = end.unwrap_or_else(|| panic!("unbalanced sharding attribute in {body}"));
        out.push(body[..end].to_string());
        rest = &body[end..];
    }
    out
}

fn corpus_strings() -> Vec<String> {
    let mut out = Vec::new();
    for file in [
        "sharding_propagation.dev.jsonl",
        "spmd_partitioner.dev.jsonl",
    ] {
        for case in common::corpus_cases(file) {
            let hlo = case["hlo"].as_str().expect("every case has hlo text");
            out.extend(sharding_attributes(hlo));
            for e in case["expectations"].as_array().into_iter().flatten() {
                if let Some(s) = e["sharding"].as_str() {
                    out.push(s.to_string());
                }
            }
        }
    }
    out
}

/// Whether the sharding (every tuple element) is tiled, replicated or partially replicated.
fn is_axis_based(s: &HloSharding) -> bool {
    match s.ungrouped() {
        HloSharding::Replicated => true,
        HloSharding::Tiled(t) => !t.subgroups.contains(&Subgroup::Manual),
        HloSharding::Tuple(v) => !v.is_empty() && v.iter().all(is_axis_based),
        _ => false,
    }
}

/// Through a derived mesh, the axis-based form, JAX and DTensor text, and back to HLO.
fn axis_round_trip(s: &HloSharding) {
    let HloSharding::Tiled(t) = s.ungrouped() else {
        if let HloSharding::Tuple(v) = s {
            v.iter().for_each(axis_round_trip);
        }
        return;
    };
    let rank = t.data_rank();
    let mesh = s
        .derive_mesh()
        .unwrap_or_else(|e| panic!("{s}: {e}"))
        .expect("a tiled sharding has a mesh");
    let axes = s
        .to_sharding(&mesh, rank)
        .unwrap_or_else(|e| panic!("{s} on {mesh}: {e}"));
    let back = HloSharding::from_sharding(&axes, &mesh).unwrap();
    assert!(back.equivalent(s), "{s} -> {axes:?} on {mesh} -> {back}");
    let jax = axes.to_jax().unwrap();
    assert_eq!(Sharding::parse_jax(&jax, rank).unwrap(), axes, "{jax}");
    // DTensor splits a dim over several axes only in mesh order; other orders must be refused.
    let in_mesh_order = axes.dims.iter().all(|d| {
        let idx: Vec<_> = d.axes.iter().map(|a| mesh.axis_index(a)).collect();
        idx.windows(2).all(|w| w[0] < w[1])
    });
    match axes.to_dtensor(&mesh) {
        Ok(dt) => {
            assert!(in_mesh_order, "{axes:?} printed as {dt}");
            assert_eq!(
                Sharding::parse_dtensor(&dt, &mesh, rank).unwrap(),
                axes,
                "{dt}"
            );
        }
        Err(e) => assert!(
            !in_mesh_order && e.to_string().contains("mesh order"),
            "{e}"
        ),
    }
}

#[test]
fn every_corpus_sharding_round_trips() {
    let strings = corpus_strings();
    assert!(strings.len() > 1000, "only {} strings found", strings.len());
    let (mut axis_based, mut other) = (0, 0);
    for s in &strings {
        let parsed = HloSharding::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        let printed = parsed.to_string();
        let reparsed = HloSharding::parse(&printed).unwrap_or_else(|e| panic!("{printed}: {e}"));
        assert_eq!(reparsed, parsed, "{s} printed as {printed}");
        assert!(reparsed.equivalent(&parsed), "{s} printed as {printed}");
        assert_eq!(reparsed.to_string(), printed, "printing is stable");
        if is_axis_based(&parsed) {
            axis_round_trip(&parsed);
            axis_based += 1;
        } else {
            other += 1;
        }
    }
    println!(
        "{} corpus sharding strings round-trip: {axis_based} tiled/replicated/partially \
         replicated (also through Sharding, JAX and DTensor), {other} manual/maximal/unknown",
        strings.len()
    );
}
