use super::*;

const DIM: usize = 20; // not a multiple of the 16 lanes: the remainder is summed too
const N: usize = 300;
const NLIST: usize = 7;

/// Deterministic values in [-0.25, 0.25) (a splitmix-style hash of the index).
fn values(n: usize, salt: u64) -> Vec<f32> {
    (0..n)
        .map(|i| {
            let mut x = i as u64 ^ salt ^ 0x9E37_79B9_7F4A_7C15;
            x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            ((x >> 40) as f32 / (1u64 << 24) as f32 - 0.5) / 2.0
        })
        .collect()
}

/// Owned tables: item `i` in list `i % NLIST`, codes quantized with one scale per dimension.
struct Fixture {
    vectors: Vec<f32>,
    centroids: Vec<f32>,
    offsets: Vec<u32>,
    items: Vec<u32>,
    codes: Vec<i8>,
    scale: Vec<f32>,
}

impl Fixture {
    fn new() -> Self {
        let vectors = values(N * DIM, 1);
        let centroids = values(NLIST * DIM, 2);
        let mut items: Vec<u32> = (0..N as u32).collect();
        items.sort_by_key(|&i| (i as usize % NLIST, i));
        let mut offsets = vec![0u32];
        for l in 0..NLIST {
            offsets.push(
                offsets[l] + items.iter().filter(|&&i| i as usize % NLIST == l).count() as u32,
            );
        }
        let scale: Vec<f32> = (0..DIM)
            .map(|d| {
                (0..N)
                    .map(|i| vectors[i * DIM + d].abs())
                    .fold(0.0, f32::max)
                    / 127.0
            })
            .collect();
        let codes = items
            .iter()
            .flat_map(|&i| (0..DIM).map(move |d| (i as usize, d)))
            .map(|(i, d)| (vectors[i * DIM + d] / scale[d]).round() as i8)
            .collect();
        Self {
            vectors,
            centroids,
            offsets,
            items,
            codes,
            scale,
        }
    }

    fn tables(&self) -> IvfTables<'_> {
        IvfTables {
            centroids: &self.centroids,
            offsets: &self.offsets,
            items: &self.items,
            codes: &self.codes,
            scale: &self.scale,
        }
    }

    fn index(&self) -> IvfIndex {
        IvfIndex::new(&self.tables(), DIM).unwrap()
    }
}

fn exact_dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum()
}

/// The exact top `k` of `candidates` by f64 dot product, ties by id.
fn brute_force(f: &Fixture, query: &[f32], candidates: &[u32], k: usize) -> Vec<u32> {
    let mut scored: Vec<(f64, u32)> = candidates
        .iter()
        .map(|&i| (exact_dot(query, &f.vectors[i as usize * DIM..][..DIM]), i))
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    scored.iter().take(k).map(|s| s.1).collect()
}

#[test]
fn every_list_and_every_item_rescored_is_an_exact_search() {
    let f = Fixture::new();
    let index = f.index();
    assert_eq!((index.len(), index.ndim(), index.nlist()), (N, DIM, NLIST));
    let all: Vec<u32> = (0..N as u32).collect();
    for salt in 10..20 {
        let query = values(DIM, salt);
        let hits = index.search(&query, &f.vectors, DIM, 40, NLIST, N).unwrap();
        assert_eq!(hits.items, brute_force(&f, &query, &all, 40));
        for (&item, &score) in hits.items.iter().zip(&hits.scores) {
            let exact = exact_dot(&query, &f.vectors[item as usize * DIM..][..DIM]);
            assert!(
                (f64::from(score) - exact).abs() < 1e-5,
                "{score} vs {exact}"
            );
        }
        assert!(hits.scores.windows(2).all(|w| w[0] >= w[1]));
    }
}

#[test]
fn one_probe_searches_the_list_of_the_best_centroid_only() {
    let f = Fixture::new();
    let index = f.index();
    let query = values(DIM, 3);
    let best = (0..NLIST)
        .max_by(|&a, &b| {
            let (sa, sb) = (
                exact_dot(&query, &f.centroids[a * DIM..][..DIM]),
                exact_dot(&query, &f.centroids[b * DIM..][..DIM]),
            );
            sa.total_cmp(&sb)
        })
        .unwrap();
    let list: Vec<u32> = (0..N as u32)
        .filter(|&i| i as usize % NLIST == best)
        .collect();
    let hits = index.search(&query, &f.vectors, DIM, 10, 1, N).unwrap();
    assert_eq!(hits.items, brute_force(&f, &query, &list, 10));
}

#[test]
fn a_short_rescore_still_returns_k_hits_scored_exactly() {
    let f = Fixture::new();
    let index = f.index();
    let query = values(DIM, 4);
    // rescore below k is raised to k.
    let hits = index.search(&query, &f.vectors, DIM, 25, NLIST, 5).unwrap();
    assert_eq!(hits.items.len(), 25);
    for (&item, &score) in hits.items.iter().zip(&hits.scores) {
        let exact = exact_dot(&query, &f.vectors[item as usize * DIM..][..DIM]);
        assert!((f64::from(score) - exact).abs() < 1e-5);
    }
}

#[test]
fn k_is_clamped_to_the_catalog_and_zero_is_empty() {
    let f = Fixture::new();
    let index = f.index();
    let query = values(DIM, 5);
    assert_eq!(
        index
            .search(&query, &f.vectors, DIM, 0, 3, 0)
            .unwrap()
            .items
            .len(),
        0
    );
    let all = index
        .search(&query, &f.vectors, DIM, N + 50, NLIST + 9, 0)
        .unwrap();
    let mut items = all.items.clone();
    items.sort_unstable();
    assert_eq!(items, (0..N as u32).collect::<Vec<_>>());
}

#[test]
fn equal_scores_are_ordered_by_item_id() {
    let mut f = Fixture::new();
    // Items 5, 12 and 299 get the same vector as item 40.
    let row: Vec<f32> = f.vectors[40 * DIM..41 * DIM].to_vec();
    for i in [5usize, 12, 299] {
        f.vectors[i * DIM..(i + 1) * DIM].copy_from_slice(&row);
    }
    let index = f.index();
    let hits = index.search(&row, &f.vectors, DIM, 4, NLIST, N).unwrap();
    assert_eq!(hits.items, vec![5, 12, 40, 299]);
}

#[cfg(target_arch = "x86_64")]
#[test]
fn the_avx2_and_portable_paths_return_the_same_bits() {
    if !std::arch::is_x86_feature_detected!("avx2") {
        return;
    }
    let f = Fixture::new();
    let index = f.index();
    let depth = Depth {
        stride: DIM,
        k: 30,
        nprobe: 3,
        rescore: 60,
    };
    for salt in 30..40 {
        let query = values(DIM, salt);
        let mut scratch = Scratch::default();
        let portable = index.search_with::<false>(&query, &f.vectors, depth, &mut scratch);
        // SAFETY: checked above.
        let avx2 = unsafe { index.search_avx2(&query, &f.vectors, depth, &mut scratch) };
        assert_eq!(portable, avx2);
    }
}

#[test]
fn bad_tables_are_rejected_naming_the_array() {
    let f = Fixture::new();
    let what = |tables: IvfTables<'_>, ndim: usize| match IvfIndex::new(&tables, ndim) {
        Err(Error::Length { what, .. }) | Err(Error::InvalidValue { what, .. }) => what,
        Err(Error::UnknownItem { what, .. }) => what,
        other => panic!("unexpected {other:?}"),
    };
    assert_eq!(what(f.tables(), 0), "ndim");
    assert_eq!(
        what(
            IvfTables {
                centroids: &f.centroids[1..],
                ..f.tables()
            },
            DIM
        ),
        "centroids"
    );
    assert_eq!(
        what(
            IvfTables {
                offsets: &f.offsets[1..],
                ..f.tables()
            },
            DIM
        ),
        "offsets"
    );
    let mut offsets = f.offsets.clone();
    offsets.swap(2, 3);
    assert_eq!(
        what(
            IvfTables {
                offsets: &offsets,
                ..f.tables()
            },
            DIM
        ),
        "offsets"
    );
    assert_eq!(
        what(
            IvfTables {
                codes: &f.codes[1..],
                ..f.tables()
            },
            DIM
        ),
        "codes"
    );
    assert_eq!(
        what(
            IvfTables {
                scale: &f.scale[1..],
                ..f.tables()
            },
            DIM
        ),
        "scale"
    );
    let mut scale = f.scale.clone();
    scale[3] = f32::NAN;
    assert_eq!(
        what(
            IvfTables {
                scale: &scale,
                ..f.tables()
            },
            DIM
        ),
        "scale"
    );
    let mut items = f.items.clone();
    items[7] = N as u32;
    assert_eq!(
        what(
            IvfTables {
                items: &items,
                ..f.tables()
            },
            DIM
        ),
        "items"
    );
    items[7] = items[8];
    assert_eq!(
        what(
            IvfTables {
                items: &items,
                ..f.tables()
            },
            DIM
        ),
        "items"
    );
}

#[test]
fn bad_searches_are_rejected_naming_the_argument() {
    let f = Fixture::new();
    let index = f.index();
    let query = values(DIM, 6);
    let what = |result: Result<Hits>| match result {
        Err(Error::Length { what, .. }) | Err(Error::InvalidValue { what, .. }) => what,
        other => panic!("unexpected {other:?}"),
    };
    assert_eq!(
        what(index.search(&query[1..], &f.vectors, DIM, 5, 2, 10)),
        "vector"
    );
    assert_eq!(
        what(index.search(&query, &f.vectors[DIM..], DIM, 5, 2, 10)),
        "vectors"
    );
    assert_eq!(
        what(index.search(&query, &f.vectors, DIM, 5, 0, 10)),
        "nprobe"
    );
    let mut nan = query.clone();
    nan[2] = f32::NAN;
    assert_eq!(
        what(index.search(&nan, &f.vectors, DIM, 5, 2, 10)),
        "vector"
    );
    assert_eq!(
        what(index.search(&query, &f.vectors, DIM - 1, 5, 2, 10)),
        "stride"
    );
}

#[test]
fn rows_longer_than_the_embedding_are_read_by_their_first_ndim_values() {
    let f = Fixture::new();
    let index = f.index();
    let stride = DIM + 5;
    let mut packed = vec![9.0f32; N * stride];
    for i in 0..N {
        packed[i * stride..i * stride + DIM].copy_from_slice(&f.vectors[i * DIM..(i + 1) * DIM]);
    }
    let query = values(DIM, 7);
    let plain = index.search(&query, &f.vectors, DIM, 20, 4, 50).unwrap();
    assert_eq!(
        index.search(&query, &packed, stride, 20, 4, 50).unwrap(),
        plain
    );
}
