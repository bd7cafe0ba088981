use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;

const DIM: usize = 16;
const N: usize = 500;

/// A fresh directory per test, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "edgerank-ann-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Deterministic vectors, not normalized (a splitmix-style hash of the index).
fn vectors() -> Vec<Vec<f32>> {
    (0..N)
        .map(|i| {
            (0..DIM)
                .map(|j| {
                    let mut x = (i * DIM + j) as u64 ^ 0x9E37_79B9_7F4A_7C15;
                    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                    ((x >> 40) as f32 / (1u64 << 24) as f32 - 0.5) / 2.0
                })
                .collect()
        })
        .collect()
}

/// An f32 inner-product index of `vectors()` saved at `dir/index.usearch`, keys = rows.
fn saved(dir: &TempDir) -> (PathBuf, Vec<Vec<f32>>) {
    let options = IndexOptions {
        dimensions: DIM,
        metric: MetricKind::IP,
        quantization: ScalarKind::F32,
        connectivity: 8,
        expansion_add: 64,
        expansion_search: 32,
        multi: false,
    };
    let index = usearch::Index::new(&options).unwrap();
    index.reserve(N).unwrap();
    let vectors = vectors();
    for (i, v) in vectors.iter().enumerate() {
        index.add(i as u64, v).unwrap();
    }
    let path = dir.0.join("index.usearch");
    index.save(path.to_str().unwrap()).unwrap();
    (path, vectors)
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[test]
fn view_reads_the_header_and_search_scores_are_dot_products() {
    let dir = TempDir::new();
    let (path, vectors) = saved(&dir);
    let index = AnnIndex::view(&path, 4).unwrap();
    assert_eq!(
        (index.len(), index.ndim(), index.metric(), index.scalar()),
        (N, DIM, "ip", "f32")
    );
    assert_eq!((index.threads(), index.connectivity()), (4, 8));
    index.set_expansion_search(N).unwrap();
    assert_eq!(index.expansion_search(), N);
    let query = &vectors[3];
    let hits = index.search(query, 10).unwrap();
    assert_eq!(hits.items.len(), 10);
    // With an expansion as large as the index the search is exact: the best dot products, in order.
    let mut best: Vec<(f32, u32)> = vectors
        .iter()
        .enumerate()
        .map(|(i, v)| (dot(v, query), i as u32))
        .collect();
    best.sort_by(|a, b| b.0.total_cmp(&a.0));
    let want: Vec<u32> = best[..10].iter().map(|&(_, i)| i).collect();
    assert_eq!(hits.items, want);
    for (item, score) in hits.items.iter().zip(&hits.scores) {
        assert!((score - dot(&vectors[*item as usize], query)).abs() < 1e-5);
    }
}

#[test]
fn depth_is_capped_at_the_index_and_zero_is_empty() {
    let dir = TempDir::new();
    let (path, vectors) = saved(&dir);
    let index = AnnIndex::view(&path, 1).unwrap();
    let all = index.search(&vectors[0], N + 7).unwrap();
    let mut items = all.items.clone();
    items.sort_unstable();
    assert_eq!(items, (0..N as u32).collect::<Vec<_>>());
    let none = index.search(&vectors[0], 0).unwrap();
    assert!(none.items.is_empty() && none.scores.is_empty());
}

#[test]
fn wrong_query_length_names_the_vector() {
    let dir = TempDir::new();
    let (path, _) = saved(&dir);
    let index = AnnIndex::view(&path, 1).unwrap();
    let err = index.search(&[0.0; DIM + 1], 3).unwrap_err();
    assert_eq!(
        err,
        Error::Length {
            what: "vector",
            expected: DIM,
            got: DIM + 1
        }
    );
}

#[test]
fn files_that_are_not_an_index_are_named() {
    let dir = TempDir::new();
    let junk = dir.0.join("junk.usearch");
    std::fs::write(&junk, vec![7u8; 4096]).unwrap();
    for path in [junk, dir.0.join("missing.usearch"), dir.0.clone()] {
        match AnnIndex::view(&path, 1).unwrap_err() {
            Error::Index { path: shown, .. } => assert_eq!(shown, path.display().to_string()),
            other => panic!("{other:?}"),
        }
    }
    let (path, _) = saved(&dir);
    assert!(matches!(
        AnnIndex::view(&path, 0),
        Err(Error::InvalidValue {
            what: "threads",
            ..
        })
    ));
    let index = AnnIndex::view(&path, 1).unwrap();
    assert!(matches!(
        index.set_expansion_search(0),
        Err(Error::InvalidValue {
            what: "expansion_search",
            ..
        })
    ));
}

#[test]
fn more_concurrent_searches_than_slots_all_succeed() {
    let dir = TempDir::new();
    let (path, vectors) = saved(&dir);
    let index = AnnIndex::view(&path, 1).unwrap();
    let expected: Vec<Hits> = vectors[..20]
        .iter()
        .map(|q| index.search(q, 50).unwrap())
        .collect();
    std::thread::scope(|s| {
        for _ in 0..6 {
            s.spawn(|| {
                for _ in 0..20 {
                    for (q, want) in vectors[..20].iter().zip(&expected) {
                        assert_eq!(&index.search(q, 50).unwrap(), want);
                    }
                }
            });
        }
    });
}
