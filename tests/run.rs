//! `shardc run`: the reference executor on zoo models, checked against hand computation.

use shardc::ir::{from_json, Graph};
use shardc::runtime::random_inputs;

use crate::common::{shardc, shardc_ok, zoo, TINY_GPT};

/// The value printed on the `loss NAME: VALUE` line.
fn printed_loss(stdout: &str) -> f64 {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("loss "))
        .unwrap_or_else(|| panic!("no loss line in\n{stdout}"));
    line.rsplit(' ')
        .next()
        .and_then(|v| v.parse().ok())
        .expect("a number")
}

fn load(path: &str) -> Graph {
    from_json(&std::fs::read_to_string(path).expect("written")).expect("valid")
}

/// `x·w + b` for row-major `x` `[n, k]`, `w` `[k, m]`, `b` `[m]`.
fn affine(x: &[f64], w: &[f64], b: &[f64], n: usize, k: usize, m: usize) -> Vec<f64> {
    let mut y = vec![0.0; n * m];
    for i in 0..n {
        for j in 0..m {
            y[i * m + j] = b[j] + (0..k).map(|t| x[i * k + t] * w[t * m + j]).sum::<f64>();
        }
    }
    y
}

#[test]
fn run_of_an_mlp_prints_the_loss_computed_by_hand_from_the_same_inputs() {
    let path = zoo("run_mlp.json", &["mlp", "--batch", "5", "--sizes", "4,8,3"]);
    let g = load(&path);
    let inputs: Vec<Vec<f64>> = random_inputs(&g, 7)
        .iter()
        .map(|t| t.to_f64_vec())
        .collect();
    let names: Vec<&str> = g.inputs().map(|v| g.node(v).name.as_str()).collect();
    assert_eq!(
        names,
        [
            "x",
            "layers.0.weight",
            "layers.0.bias",
            "layers.1.weight",
            "layers.1.bias",
            "target"
        ]
    );
    let h: Vec<f64> = affine(&inputs[0], &inputs[1], &inputs[2], 5, 4, 8)
        .into_iter()
        .map(|v| v.max(0.0))
        .collect();
    let y = affine(&h, &inputs[3], &inputs[4], 5, 8, 3);
    let mse = y
        .iter()
        .zip(&inputs[5])
        .map(|(a, t)| (a - t) * (a - t))
        .sum::<f64>()
        / 15.0;
    let out = shardc_ok(&["run", &path, "--seed", "7"]);
    assert!(out.starts_with("graph mlp: "), "{out}");
    assert!(out.contains("loss.value: f32[] min"), "{out}");
    let loss = printed_loss(&out);
    assert!(
        (loss - mse).abs() <= 1e-5 * mse.abs().max(1.0),
        "{loss} vs {mse}"
    );
}

#[test]
fn a_freshly_initialised_gpt_predicts_nearly_uniformly() {
    // With N(0, 0.02) weights the logits are near zero, so the cross-entropy is close to ln V.
    let path = zoo("run_gpt.json", TINY_GPT);
    let loss = printed_loss(&shardc_ok(&["run", &path]));
    assert!(
        (loss - 32f64.ln()).abs() < 0.05,
        "{loss} vs ln 32 = {}",
        32f64.ln()
    );
}

#[test]
fn run_is_deterministic_per_seed() {
    let path = zoo("run_moe.json", &["moe"]);
    let a = shardc_ok(&["run", &path, "--seed", "1"]);
    assert_eq!(a, shardc_ok(&["run", &path, "--seed", "1"]));
    assert_ne!(a, shardc_ok(&["run", &path, "--seed", "2"]));
    assert!(printed_loss(&a).is_finite());
}

#[test]
fn run_of_a_resnet_gives_a_finite_positive_loss() {
    let path = zoo("run_resnet.json", &["resnet"]);
    let loss = printed_loss(&shardc_ok(&["run", &path]));
    assert!(loss.is_finite() && loss > 0.0, "{loss}");
}

#[test]
fn run_refuses_graphs_too_large_for_one_cpu_with_an_input_error() {
    let path = zoo(
        "run_big.json",
        &[
            "gpt", "--layers", "8", "--hidden", "4096", "--heads", "32", "--vocab", "51200",
        ],
    );
    let out = shardc(&["run", &path]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--max-memory 4 GiB") && stderr.contains("GiB"),
        "{stderr}"
    );
}
