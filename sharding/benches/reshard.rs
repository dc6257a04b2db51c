//! Planning one resharding by search: the largest layout spaces shardc meets, a rank-4 value on
//! a 4-axis mesh, from a layout using every axis to one that moves them all. The first plan is
//! searched (its time is printed); the benchmark then measures planning with the cache warm.

use criterion::{criterion_group, criterion_main, Criterion};
use shardc_ir::{DType, Mesh, Sharding, TensorType};
use shardc_sharding::reshard;

fn bench(c: &mut Criterion) {
    let mesh: Mesh = "a=2,b=2,c=4,d=8".parse().expect("valid mesh");
    let ty = TensorType::new(DType::BF16, vec![64, 2048, 96, 128]);
    let from = Sharding {
        partial: vec!["b".into()],
        ..Sharding::from_dims(&[&["a"], &["c", "d"], &[], &[]])
    };
    let to = Sharding::from_dims(&[&["d"], &[], &["b", "c"], &["a"]]);
    // The first call searches; later ones with the same layouts, type and mesh read the cache.
    let t = std::time::Instant::now();
    let plan = reshard(&from, &to, &ty, &mesh).expect("a valid reshard");
    eprintln!("first plan (searched): {:.2?}", t.elapsed());
    eprintln!(
        "plan: {}",
        plan.iter()
            .map(|s| format!("{} ({} B)", s.kind, s.bytes_per_device))
            .collect::<Vec<_>>()
            .join(", ")
    );
    c.bench_function("reshard/rank4_mesh4_cached", |b| {
        b.iter(|| reshard(&from, &to, &ty, &mesh).expect("a valid reshard"))
    });
    let small_from = Sharding {
        partial: vec!["tp".into()],
        ..Sharding::from_dims(&[&["dp"], &[]])
    };
    let small_to = Sharding::from_dims(&[&["dp"], &["tp"]]);
    let mesh2: Mesh = "dp=8,tp=8".parse().expect("valid mesh");
    let ty2 = TensorType::new(DType::BF16, vec![2048, 12288]);
    c.bench_function("reshard/megatron_reduce_scatter_cached", |b| {
        b.iter(|| reshard(&small_from, &small_to, &ty2, &mesh2).expect("a valid reshard"))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
