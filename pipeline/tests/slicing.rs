//! Alpa's stage-slicing DP against brute force, with uneven layers, memory limits and the
//! default GPT stage cost.

use std::ops::Range;

use shardc_cost_model::{Catalog, Cluster, GptShape};
use shardc_pipeline::{
    slice_stages, submesh_shapes, GptStageCost, SliceOptions, StageCost, StageEstimate, Submesh,
};

/// Layer `i` costs `weights[i]`; a stage on `d` devices runs `work / d` plus a tensor-parallel
/// penalty of `0.3 · (d − 1)` per layer; each layer holds 1 unit of activations per micro-batch.
fn cost(weights: Vec<f64>) -> impl Fn(Range<usize>, Submesh) -> Option<StageEstimate> {
    move |r: Range<usize>, m: Submesh| {
        let d = f64::from(m.devices());
        let work: f64 = weights[r.clone()].iter().sum();
        let n = r.len() as f64;
        Some(StageEstimate {
            time: work / d + 0.3 * (d - 1.0) * n,
            static_bytes: n,
            activation_bytes: n / d,
        })
    }
}

/// Every contiguous cut and every assignment of submesh shapes using exactly all devices
/// (no memory limit).
fn brute_force(c: &dyn StageCost, o: &SliceOptions) -> Option<f64> {
    let shapes = submesh_shapes(o.hosts, o.devices_per_host);
    let dev = o.hosts * o.devices_per_host;
    let mut best: Option<f64> = None;
    fn go(
        c: &dyn StageCost,
        o: &SliceOptions,
        shapes: &[Submesh],
        k: usize,
        left: u32,
        stages: Vec<f64>,
        best: &mut Option<f64>,
    ) {
        if k == o.layers {
            if left != 0 {
                return;
            }
            let sum: f64 = stages.iter().sum();
            let max = stages.iter().copied().fold(0.0, f64::max);
            let lat = sum + f64::from(o.microbatches - 1) * max;
            if best.map_or(true, |b| lat < b) {
                *best = Some(lat);
            }
            return;
        }
        for i in k + 1..=o.layers {
            for m in shapes {
                if m.devices() > left {
                    continue;
                }
                let Some(e) = c.estimate(k..i, *m) else {
                    continue;
                };
                let mut next = stages.clone();
                next.push(e.time);
                go(c, o, shapes, i, left - m.devices(), next, best);
            }
        }
    }
    go(c, o, &shapes, 0, dev, Vec::new(), &mut best);
    best
}

fn options(layers: usize, hosts: u32, per_host: u32, microbatches: u32) -> SliceOptions {
    SliceOptions {
        layers,
        hosts,
        devices_per_host: per_host,
        microbatches,
        memory_limit: f64::INFINITY,
        max_stages: None,
    }
}

#[test]
fn dp_finds_the_brute_force_optimum() {
    let cases = [
        (vec![1.0; 6], 1, 4, 8),
        (vec![3.0, 1.0, 1.0, 1.0, 1.0, 4.0], 1, 4, 8),
        (vec![2.0, 1.0, 1.0, 1.0, 5.0], 2, 2, 4),
        (vec![1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0], 1, 2, 16),
    ];
    for (w, hosts, per, b) in cases {
        let c = cost(w.clone());
        let o = options(w.len(), hosts, per, b);
        let plan = slice_stages(&c, &o).unwrap();
        let want = brute_force(&c, &o).unwrap();
        assert!(
            (plan.latency - want).abs() < 1e-9,
            "{w:?}: dp {} vs brute force {want}",
            plan.latency
        );
        // Contiguous, non-empty stages covering every layer, using every device.
        assert_eq!(plan.stages.first().unwrap().layers.start, 0);
        assert_eq!(plan.stages.last().unwrap().layers.end, w.len());
        assert!(plan
            .stages
            .windows(2)
            .all(|p| p[0].layers.end == p[1].layers.start));
        assert!(plan.stages.iter().all(|s| !s.layers.is_empty()));
        assert_eq!(
            plan.stages.iter().map(|s| s.submesh.devices()).sum::<u32>(),
            hosts * per
        );
        let sum: f64 = plan.stages.iter().map(|s| s.time).sum();
        let max = plan.stages.iter().map(|s| s.time).fold(0.0, f64::max);
        assert!((sum + f64::from(b - 1) * max - plan.latency).abs() < 1e-9);
    }
}

#[test]
fn heavy_first_and_last_layers_give_uneven_stages() {
    // An embedding and a head as heavy as three blocks each: they get stages of their own.
    let w = vec![3.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 3.0];
    let plan = slice_stages(&cost(w), &options(8, 1, 4, 32)).unwrap();
    let sizes: Vec<usize> = plan.stages.iter().map(|s| s.layers.len()).collect();
    assert_eq!(sizes.len(), 4, "{sizes:?}");
    assert!(sizes[0] < sizes[1] && sizes[3] < sizes[2], "{sizes:?}");
}

#[test]
fn memory_limit_is_checked_where_the_first_stage_holds_the_most() {
    let w = vec![1.0; 8];
    let free = slice_stages(&cost(w.clone()), &options(8, 1, 4, 8)).unwrap();
    let peak = free.stages[0].memory;
    let mut o = options(8, 1, 4, 8);
    o.memory_limit = peak - 0.5;
    let tight = slice_stages(&cost(w.clone()), &o).unwrap();
    assert!(tight.stages.iter().all(|s| s.memory <= o.memory_limit));
    assert!(tight.latency >= free.latency);
    o.memory_limit = 0.1;
    let e = slice_stages(&cost(w), &o).unwrap_err().to_string();
    assert!(
        e.contains("no slicing of 8 layers over 4 devices fits"),
        "{e}"
    );
}

#[test]
fn gpt_stage_cost_prices_embedding_and_head_where_they_sit() {
    let cluster = Cluster::parse("a100-80gb:2x8", &Catalog::builtin()).unwrap();
    let shape = GptShape {
        layers: 8,
        hidden: 4096,
        heads: 32,
        seq: 2048,
        vocab: 51200,
    };
    let c = GptStageCost {
        shape,
        micro_batch: 1,
        cluster,
    };
    let one = Submesh {
        hosts: 1,
        devices_per_host: 1,
    };
    let block = c.estimate(1..2, one).unwrap();
    let with_head = c.estimate(8..10, one).unwrap();
    let with_emb = c.estimate(0..2, one).unwrap();
    assert!(
        with_head.time > 1.2 * block.time,
        "the LM head's matmul is priced on the last stage"
    );
    assert!(
        with_emb.static_bytes > 1.2 * block.static_bytes,
        "the embedding's weights sit on the first stage"
    );
    let tp = c
        .estimate(
            1..2,
            Submesh {
                hosts: 1,
                devices_per_host: 8,
            },
        )
        .unwrap();
    assert!(tp.time < block.time && tp.static_bytes < block.static_bytes);
    let mut o = options(c.layer_count(), 2, 8, 16);
    o.memory_limit = 80e9;
    let plan = slice_stages(&c, &o).unwrap();
    assert_eq!(
        plan.stages.iter().map(|s| s.submesh.devices()).sum::<u32>(),
        16
    );
    assert!(plan.stages.iter().all(|s| s.memory <= 80e9));
}

#[test]
fn empty_problems_are_refused() {
    let e = slice_stages(&cost(vec![]), &options(0, 1, 4, 8))
        .unwrap_err()
        .to_string();
    assert!(e.contains("at least one layer"), "{e}");
}
