//! Every op's gradient rule against central finite differences in f64.
//!
//! [`samples::samples`] matches every `Op` variant without a wildcard, so an op added later
//! fails to compile here until it has a sample graph (and so a checked gradient rule); the test
//! `every_op_variant_has_a_sample` also checks the prototype list against the variants the
//! graph format knows.

#[path = "gradcheck/samples.rs"]
mod samples;

use std::collections::BTreeSet;

use samples::{prototypes, samples, Place, Sample};
use shardc_ir::{grad, Graph, Mesh, Op, ValueId};
use shardc_runtime::{execute, random_inputs, run_mpmd, run_spmd, MeshOptions, Stage, Tensor};

/// The `op` tags the graph format accepts, read from serde's unknown-variant message (the
/// only list of the variants that does not have to be kept by hand).
fn format_variants() -> BTreeSet<String> {
    let err = serde_json::from_str::<Op>(r#"{"op": "no_such_op"}"#)
        .unwrap_err()
        .to_string();
    let list = err
        .split("expected one of")
        .nth(1)
        .expect("serde lists the variants");
    list.split(',')
        .map(|s| {
            s.trim()
                .trim_matches(|c: char| c == '`' || c.is_whitespace())
                .to_string()
        })
        .map(|s| s.split('`').next().unwrap_or("").to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

#[test]
fn every_op_variant_has_a_sample() {
    let variants = format_variants();
    assert!(variants.len() >= 25, "{variants:?}");
    let tags: BTreeSet<String> = prototypes()
        .iter()
        .map(|op| {
            let v = serde_json::to_value(op).unwrap();
            v["op"].as_str().unwrap().to_string()
        })
        .collect();
    let missing: Vec<&String> = variants.difference(&tags).collect();
    assert!(
        missing.is_empty(),
        "ops without a gradient sample: {missing:?}"
    );
}

/// Runs every program; returns each device's outputs.
fn run(programs: &[Graph], place: &Place, inputs: Vec<Vec<Tensor>>) -> Vec<Vec<Tensor>> {
    match place {
        Place::Single => vec![execute(&programs[0], &inputs[0]).unwrap()],
        Place::Mesh(mesh) => run_spmd(&programs[0], mesh, inputs).unwrap(),
        Place::Pipeline => {
            let mesh = Mesh::new(&[("x", 1)]).unwrap();
            let stages: Vec<Stage> = programs
                .iter()
                .enumerate()
                .map(|(k, p)| Stage {
                    program: p,
                    mesh: mesh.clone(),
                    devices: vec![k],
                })
                .collect();
            run_mpmd(&stages, inputs, &MeshOptions::default())
                .unwrap()
                .into_iter()
                .map(Result::unwrap)
                .collect()
        }
    }
}

/// The programs each device runs.
fn per_device<'a>(programs: &'a [Graph], place: &Place) -> Vec<&'a Graph> {
    match place {
        Place::Single => vec![&programs[0]],
        Place::Mesh(m) => vec![&programs[0]; m.devices.len()],
        Place::Pipeline => programs.iter().collect(),
    }
}

/// The loss whose gradient device `d`'s parameters get.
fn loss_for(place: &Place, outs: &[Vec<Tensor>], d: usize) -> f64 {
    match place {
        Place::Mesh(_) => outs.iter().map(|o| o[0].scalar_f64().unwrap()).sum(),
        Place::Single | Place::Pipeline => outs[d][0].scalar_f64().unwrap(),
    }
}

fn check(s: &Sample) -> Result<f64, String> {
    let trained: Vec<Graph> = s
        .programs
        .iter()
        .map(|g| grad(g, g.training.loss.unwrap()).map_err(|e| e.to_string()))
        .collect::<Result<_, _>>()?;
    let forward = per_device(&s.programs, &s.place);
    let backward = per_device(&trained, &s.place);
    let inputs: Vec<Vec<Tensor>> = forward
        .iter()
        .enumerate()
        .map(|(d, g)| random_inputs(g, 17 + d as u64))
        .collect();
    let outs = run(&trained, &s.place, inputs.clone());
    let (mut err2, mut norm2) = (0.0f64, 0.0f64);
    for (d, g) in backward.iter().enumerate() {
        let input_ids: Vec<ValueId> = g.inputs().collect();
        for (k, &(p, gv)) in g.training.gradients.iter().enumerate() {
            let slot = input_ids.iter().position(|&v| v == p).unwrap();
            assert_eq!(g.outputs[1 + k], gv);
            let analytic = outs[d][1 + k].to_f64_vec();
            let base = inputs[d][slot].to_f64_vec();
            let h = 1e-5;
            for (e, &a) in analytic.iter().enumerate() {
                let at = |delta: f64| {
                    let mut ins = inputs.clone();
                    let mut v = base.clone();
                    v[e] += delta;
                    ins[d][slot] = Tensor::from_f64(g.ty(p).clone(), &v).unwrap();
                    loss_for(&s.place, &run(&s.programs, &s.place, ins), d)
                };
                let fd = (at(h) - at(-h)) / (2.0 * h);
                err2 += (a - fd) * (a - fd);
                norm2 += fd * fd;
            }
        }
    }
    if norm2 == 0.0 {
        return Err("every gradient is zero: the sample checks nothing".into());
    }
    Ok((err2 / norm2).sqrt())
}

#[test]
fn every_ops_gradient_matches_central_differences() {
    let mut failures = Vec::new();
    let mut checked = 0;
    let mut seen = BTreeSet::new();
    for proto in prototypes() {
        for s in samples(&proto) {
            // Ops that share a sample (send and recv) are checked once.
            if !seen.insert(s.what.clone()) {
                continue;
            }
            match check(&s) {
                Ok(rel) if rel <= 1e-6 => checked += 1,
                Ok(rel) => failures.push(format!("{}: relative error {rel:.3e}", s.what)),
                Err(e) => failures.push(format!("{}: {e}", s.what)),
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} checked, failures:\n{}",
        checked,
        failures.join("\n")
    );
}
