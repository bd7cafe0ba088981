//! One request's worth of work per stage: 500 candidates against a
//! 1M-item table (I = 25, D = 64, G = 20, U = 24, C = 4).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use edgerank_core::rng::SplitMix64;
use edgerank_core::{Assembler, Blender, ItemTable, Matrix, Reranker, Source, UserFeatures};

const N_ITEMS: usize = 1_000_000;
const N_CANDIDATES: usize = 500;
const I: usize = 25;
const D: usize = 64;
const G: usize = 20;
const U: usize = 24;
const C: usize = 4;

fn floats(rng: &mut SplitMix64, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.next_f64() as f32 - 0.5).collect()
}

fn ids(rng: &mut SplitMix64, n: usize) -> Vec<u32> {
    (0..n)
        .map(|_| (rng.next_u64() % N_ITEMS as u64) as u32)
        .collect()
}

fn bench_assemble(c: &mut Criterion) {
    let mut rng = SplitMix64::new(1);
    let (dense, emb, genre) = (
        floats(&mut rng, N_ITEMS * I),
        floats(&mut rng, N_ITEMS * D),
        floats(&mut rng, N_ITEMS * G),
    );
    let first_ts: Vec<f64> = (0..N_ITEMS).map(|i| 1.6e9 + i as f64).collect();
    let table = ItemTable {
        dense: Matrix::new("dense", &dense, N_ITEMS, I).unwrap(),
        emb: Matrix::new("emb", &emb, N_ITEMS, D).unwrap(),
        genre: Matrix::new("genre", &genre, N_ITEMS, G).unwrap(),
        first_ts: &first_ts,
    };
    let assembler = Assembler::new(&table).unwrap();
    drop((dense, emb, genre, first_ts));
    let (dense, emb, genre, ctx) = (
        floats(&mut rng, U),
        floats(&mut rng, D),
        floats(&mut rng, G),
        floats(&mut rng, C),
    );
    let user = UserFeatures {
        dense: &dense,
        emb: &emb,
        genre: &genre,
        last_ts: 1.69e9,
        now_ts: 1.7e9,
        context: &ctx,
    };
    let candidates = ids(&mut rng, N_CANDIDATES);
    c.bench_function("assemble/500", |b| {
        b.iter(|| {
            assembler
                .assemble(black_box(&user), black_box(&candidates))
                .unwrap()
        })
    });
}

fn bench_blend(c: &mut Criterion) {
    let mut rng = SplitMix64::new(2);
    let lists: Vec<(Vec<u32>, Vec<f32>)> = (0..4)
        .map(|_| (ids(&mut rng, 300), floats(&mut rng, 300)))
        .collect();
    let sources: Vec<Source<'_>> = lists
        .iter()
        .map(|(items, scores)| Source {
            items,
            scores,
            quota: 100,
        })
        .collect();
    let exclude = ids(&mut rng, 200);
    let blender = Blender::new(N_ITEMS);
    c.bench_function("blend/4x300->500", |b| {
        b.iter(|| {
            blender
                .blend(black_box(&sources), black_box(&exclude), 500)
                .unwrap()
        })
    });
}

fn bench_rerank(c: &mut Criterion) {
    let mut rng = SplitMix64::new(3);
    let genres: Vec<u16> = (0..N_ITEMS).map(|_| (rng.next_u64() % 20) as u16).collect();
    let reranker = Reranker::new(genres);
    let candidates = ids(&mut rng, N_CANDIDATES);
    let scores = floats(&mut rng, N_CANDIDATES);
    c.bench_function("rerank/500->50", |b| {
        b.iter(|| {
            reranker
                .rerank(black_box(&candidates), black_box(&scores), 50, 3, 0.1, 7)
                .unwrap()
        })
    });
}

criterion_group!(benches, bench_assemble, bench_blend, bench_rerank);
criterion_main!(benches);
