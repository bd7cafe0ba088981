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

/// A directory of its own under the temp directory, removed on drop.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("edgerank-ivf-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn file(&self, what: &str) -> std::path::PathBuf {
        self.0.join(format!("ivf_{what}.npy"))
    }

    /// Writes `values` (little-endian bytes) as `ivf_{what}.npy` of this dtype and shape.
    fn save<T: Element>(&self, what: &str, shape: &[usize], values: Vec<u8>) {
        let mut bytes = npy::header::<T>(shape);
        bytes.extend(values);
        std::fs::write(self.file(what), bytes).unwrap();
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        // Best effort: a left-over directory in the temp directory fails no test.
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn u32_bytes(values: &[u32]) -> Vec<u8> {
    values.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn i8_bytes(values: &[i8]) -> Vec<u8> {
    values.iter().map(|&x| x as u8).collect()
}

impl Fixture {
    /// The tables as a bundle's five files, as NumPy writes them.
    fn save(&self, name: &str) -> TempDir {
        let dir = TempDir::new(name);
        dir.save::<f32>("centroids", &[NLIST, DIM], f32_bytes(&self.centroids));
        dir.save::<u32>("offsets", &[NLIST + 1], u32_bytes(&self.offsets));
        dir.save::<u32>("items", &[N], u32_bytes(&self.items));
        dir.save::<i8>("codes", &[N, DIM], i8_bytes(&self.codes));
        dir.save::<f32>("scale", &[DIM], f32_bytes(&self.scale));
        dir
    }
}

/// The file and the reason of an `Error::IvfFile`.
fn file_error(result: Result<IvfIndex>) -> (String, String) {
    match result {
        Err(Error::IvfFile { path, reason }) => (path, reason),
        other => panic!("expected Error::IvfFile, got {other:?}"),
    }
}

#[test]
fn mapped_files_search_as_the_copied_tables_bit_for_bit() {
    let f = Fixture::new();
    let dir = f.save("same");
    let mapped = IvfIndex::open(&dir.0, N, DIM).unwrap();
    let owned = f.index();
    assert_eq!(
        (mapped.len(), mapped.ndim(), mapped.nlist()),
        (N, DIM, NLIST)
    );
    let t = &mapped.tables;
    assert!(matches!(
        (&t.centroids, &t.offsets, &t.items, &t.codes, &t.scale),
        (
            Table::Mapped(_),
            Table::Mapped(_),
            Table::Mapped(_),
            Table::Mapped(_),
            Table::Mapped(_)
        )
    ));
    assert!(matches!(owned.tables.items, Table::Owned(_)));
    for salt in 50..60 {
        let query = values(DIM, salt);
        for (k, nprobe, rescore) in [(40, NLIST, N), (10, 1, 10), (25, 3, 60), (N, NLIST, 0)] {
            let a = mapped
                .search(&query, &f.vectors, DIM, k, nprobe, rescore)
                .unwrap();
            let b = owned
                .search(&query, &f.vectors, DIM, k, nprobe, rescore)
                .unwrap();
            assert_eq!(a.items, b.items);
            let bits = |h: &Hits| h.scores.iter().map(|s| s.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&a), bits(&b));
        }
    }
}

#[test]
fn open_names_the_file_and_says_why() {
    let f = Fixture::new();
    let dir = f.save("bad");
    let open = || IvfIndex::open(&dir.0, N, DIM);
    let path = |what: &str| dir.file(what).display().to_string();

    // A truncated codes file.
    let bytes = std::fs::read(dir.file("codes")).unwrap();
    std::fs::write(dir.file("codes"), &bytes[..bytes.len() - 3]).unwrap();
    assert_eq!(
        file_error(open()),
        (
            path("codes"),
            format!(
                "{} bytes, expected {} ({N} rows of {DIM} i8 values after a 128-byte header)",
                bytes.len() - 3,
                bytes.len()
            )
        )
    );
    // The wrong dtype: i16 codes.
    let wide: Vec<u8> = f
        .codes
        .iter()
        .flat_map(|&c| i16::from(c).to_le_bytes())
        .collect();
    let mut header = npy::header::<i8>(&[N, DIM]);
    let at = header.windows(5).position(|w| w == b"'|i1'").unwrap();
    header[at..at + 5].copy_from_slice(b"'<i2'");
    std::fs::write(dir.file("codes"), [header, wide].concat()).unwrap();
    let (file, reason) = file_error(open());
    assert_eq!(file, path("codes"));
    assert!(
        reason.starts_with("dtype is not i8: {'descr': '<i2'"),
        "{reason}"
    );
    // The wrong shape: a dimension short.
    dir.save::<i8>("codes", &[N, DIM - 1], vec![0; N * (DIM - 1)]);
    assert_eq!(
        file_error(open()),
        (
            path("codes"),
            format!(
                "shape [{N}, {}], expected [{N}, {DIM}] (items, dimensions)",
                DIM - 1
            )
        )
    );
    // Fortran order.
    let mut header = npy::header::<i8>(&[N, DIM]);
    let at = header.windows(5).position(|w| w == b"False").unwrap();
    header[at..at + 5].copy_from_slice(b"True ");
    std::fs::write(dir.file("codes"), [header, i8_bytes(&f.codes)].concat()).unwrap();
    assert_eq!(
        file_error(open()),
        (
            path("codes"),
            "rows are in Fortran order, expected C order".to_owned()
        )
    );
    dir.save::<i8>("codes", &[N, DIM], i8_bytes(&f.codes));
    assert!(open().is_ok());

    // An item missing from the lists (another one in them twice).
    let mut items = f.items.clone();
    let gone = items[8];
    items[8] = items[7];
    dir.save::<u32>("items", &[N], u32_bytes(&items));
    assert_eq!(
        file_error(open()),
        (
            path("items"),
            format!(
                "items[8] = {} is in the lists twice, and item {gone} in none",
                items[7]
            )
        )
    );
    // An item outside the catalog; fewer entries than items.
    items[8] = N as u32;
    dir.save::<u32>("items", &[N], u32_bytes(&items));
    assert_eq!(
        file_error(open()),
        (
            path("items"),
            format!("items[8] = {N} is not a known item (n_items = {N})")
        )
    );
    dir.save::<u32>("items", &[N - 1], u32_bytes(&f.items[1..]));
    assert_eq!(
        file_error(open()),
        (
            path("items"),
            format!("shape [{}], expected [{N}] (every item once)", N - 1)
        )
    );
    dir.save::<u32>("items", &[N], u32_bytes(&f.items));

    // Offsets that do not end at the items; a NaN scale; centroids of another dimension.
    let mut offsets = f.offsets.clone();
    offsets[NLIST] -= 1;
    dir.save::<u32>("offsets", &[NLIST + 1], u32_bytes(&offsets));
    assert_eq!(
        file_error(open()),
        (
            path("offsets"),
            format!("the last offset is {}, expected {N} (the items)", N - 1)
        )
    );
    dir.save::<u32>("offsets", &[NLIST + 1], u32_bytes(&f.offsets));
    let mut scale = f.scale.clone();
    scale[2] = f32::NAN;
    dir.save::<f32>("scale", &[DIM], f32_bytes(&scale));
    assert_eq!(
        file_error(open()),
        (
            path("scale"),
            "scale[2] = NaN is not a finite value >= 0".to_owned()
        )
    );
    dir.save::<f32>("scale", &[DIM], f32_bytes(&f.scale));
    let (file, reason) = file_error(IvfIndex::open(&dir.0, N, DIM + 1));
    assert_eq!(file, path("centroids"));
    assert_eq!(
        reason,
        format!(
            "shape [{NLIST}, {DIM}], expected [nlist >= 1, {}] (lists, dimensions)",
            DIM + 1
        )
    );

    // A missing file.
    std::fs::remove_file(dir.file("scale")).unwrap();
    let (file, reason) = file_error(open());
    assert_eq!(file, path("scale"));
    assert!(reason.contains("No such file"), "{reason}");
    assert!(matches!(
        IvfIndex::open(&dir.0, N, 0),
        Err(Error::InvalidValue { what: "ndim", .. })
    ));
}

#[test]
fn open_accepts_data_on_the_type_alignment_only() {
    let f = Fixture::new();
    let dir = f.save("align");
    // The items' header 4 bytes longer: the data at 132, on u32's alignment but not on NumPy's 64.
    let pad = |what: &str, by: usize| {
        let bytes = std::fs::read(dir.file(what)).unwrap();
        let len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
        let mut out = bytes[..8].to_vec();
        out.extend_from_slice(&u16::try_from(len + by).unwrap().to_le_bytes());
        out.extend_from_slice(&bytes[10..10 + len - 1]);
        out.extend(std::iter::repeat_n(b' ', by));
        out.extend_from_slice(&bytes[10 + len - 1..]);
        std::fs::write(dir.file(what), out).unwrap();
    };
    pad("items", 4);
    assert_eq!(IvfIndex::open(&dir.0, N, DIM).unwrap().len(), N);
    pad("items", 2);
    assert_eq!(
        file_error(IvfIndex::open(&dir.0, N, DIM)),
        (
            dir.file("items").display().to_string(),
            "data at byte 134, not on a 4-byte line".to_owned()
        )
    );
}
