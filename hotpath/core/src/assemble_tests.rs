use super::*;

const DAY: f64 = 86_400.0;

/// 3 items, I = 2, D = 3, G = 2.
fn assembler() -> Assembler {
    Assembler::new(&ItemTable {
        dense: Matrix::new("d", &[1., 2., 3., 4., 5., 6.], 3, 2).unwrap(),
        emb: Matrix::new("e", &[1., 0., 0., 0., 1., 0., 1., 2., 3.], 3, 3).unwrap(),
        genre: Matrix::new("g", &[1., 0., 0., 1., 0.5, 0.5], 3, 2).unwrap(),
        first_ts: &[0.0, -1.0, 10.0 * DAY],
    })
    .unwrap()
}

fn user<'a>(emb: &'a [f32], genre: &'a [f32]) -> UserFeatures<'a> {
    UserFeatures {
        dense: &[7.0, 8.0],
        emb,
        genre,
        last_ts: 9.0 * DAY,
        now_ts: 10.0 * DAY,
        context: &[9.0],
    }
}

#[test]
fn properties() {
    let a = assembler();
    assert_eq!(
        (a.n_items(), a.item_dim(), a.emb_dim(), a.n_genres()),
        (3, 2, 3, 2)
    );
    assert_eq!(a.n_features(2, 1), 2 + 2 + 4 + 1);
}

#[test]
fn row_layout_and_cross_features() {
    let a = assembler();
    let out = a
        .assemble(&user(&[1., 2., 3.], &[2., 4.]), &[2, 0])
        .unwrap();
    let ln2 = 2f64.ln() as f32;
    let age0 = 11f64.ln() as f32; // 10 days since ts = 0
    #[rustfmt::skip]
    let want = [
        7., 8., 5., 6., 14., 3., ln2, 0., 9.,
        7., 8., 1., 2., 1., 2., ln2, age0, 9.,
    ];
    assert_eq!(out, want);
}

#[test]
fn unknown_timestamps_give_minus_one_and_future_gives_zero() {
    let a = assembler();
    let mut u = user(&[0.; 3], &[0.; 2]);
    u.last_ts = -5.0;
    let out = a.assemble(&u, &[1]).unwrap();
    assert_eq!(&out[4..8], &[0., 0., -1., -1.]);
    u.last_ts = 20.0 * DAY; // in the future: clamped to 0 days
    assert_eq!(a.assemble(&u, &[1]).unwrap()[6], 0.0);
}

#[test]
fn dot_sums_eight_lanes_then_pairs() {
    // Lane k holds the terms k, k + 8, ...; lanes are summed (0+4, 1+5, ...)
    // and then pairwise: the fixed order the doc of `dot` states.
    let mut a = [0.0f32; 19];
    a[0] = 1.0e8;
    a[8] = 1.0; // same lane as a[0]: 1e8 + 1 rounds back to 1e8 in f32
    a[4] = -1.0e8; // cancels lane 0 when lanes 0 and 4 are paired
    a[18] = 2.0; // in the tail, lane 2
    let b = [1.0f32; 19];
    assert_eq!(dot(&a, &b), 2.0);
    let exact: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
    assert_eq!(exact, 3.0); // a serial sum cancels first, then adds 1 and 2
    let c: Vec<f32> = (0..64).map(|k| k as f32 * 0.5).collect();
    let serial: f32 = c.iter().map(|x| x * 2.0).sum();
    assert_eq!(dot(&c, &[2.0; 64]), serial);
}

#[test]
fn empty_candidates_is_valid() {
    assert!(assembler()
        .assemble(&user(&[0.; 3], &[0.; 2]), &[])
        .unwrap()
        .is_empty());
}

#[test]
fn rejects_wrong_user_lengths() {
    let a = assembler();
    let err = a.assemble(&user(&[0.; 2], &[0.; 2]), &[0]).unwrap_err();
    assert!(matches!(
        err,
        Error::Length {
            what: "user_emb",
            expected: 3,
            got: 2
        }
    ));
    let err = a.assemble(&user(&[0.; 3], &[0.; 3]), &[0]).unwrap_err();
    assert!(matches!(
        err,
        Error::Length {
            what: "user_genre",
            ..
        }
    ));
}

#[test]
fn rejects_unknown_candidate() {
    let err = assembler()
        .assemble(&user(&[0.; 3], &[0.; 2]), &[0, 3])
        .unwrap_err();
    assert_eq!(
        err,
        Error::UnknownItem {
            what: "candidates",
            index: 1,
            id: 3,
            n_items: 3
        }
    );
}

#[test]
fn rejects_bad_times() {
    let a = assembler();
    for now in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let mut u = user(&[0.; 3], &[0.; 2]);
        u.now_ts = now;
        let err = a.assemble(&u, &[0]).unwrap_err();
        assert!(matches!(err, Error::InvalidValue { what: "now_ts", .. }));
    }
    let mut u = user(&[0.; 3], &[0.; 2]);
    u.last_ts = f64::NAN;
    let err = a.assemble(&u, &[0]).unwrap_err();
    assert!(matches!(
        err,
        Error::InvalidValue {
            what: "user_last_ts",
            ..
        }
    ));
}

#[test]
fn rejects_bad_tables() {
    let zeros = [0.0f32; 4];
    let table = |rows_e: usize, ts: &'static [f64]| ItemTable {
        dense: Matrix::new("d", &zeros, 2, 2).unwrap(),
        emb: Matrix::new("e", &zeros[..rows_e], rows_e, 1).unwrap(),
        genre: Matrix::new("g", &zeros[..2], 2, 1).unwrap(),
        first_ts: ts,
    };
    let err = Assembler::new(&table(3, &[0.; 2])).unwrap_err();
    assert!(matches!(
        err,
        Error::Length {
            what: "item_emb rows",
            expected: 2,
            got: 3
        }
    ));
    let err = Assembler::new(&table(2, &[0.; 3])).unwrap_err();
    assert!(matches!(
        err,
        Error::Length {
            what: "item_dense rows",
            ..
        }
    ));
    let err = Assembler::new(&table(2, &[0., f64::NAN])).unwrap_err();
    assert!(matches!(
        err,
        Error::InvalidValue {
            what: "item_first_ts",
            ..
        }
    ));
    let err = Matrix::new("m", &[0.0f32; 5], 2, 3).unwrap_err();
    assert!(matches!(
        err,
        Error::Length {
            what: "m",
            expected: 6,
            got: 5
        }
    ));
}

#[test]
fn avx_lanes_give_the_same_bits_as_sse_lanes() {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx") {
        let mut rng = crate::rng::SplitMix64::new(5);
        for n in 0..100 {
            let mut v = || -> Vec<f32> {
                (0..n)
                    .map(|_| (rng.next_f64() * 2e3 - 1e3) as f32)
                    .collect()
            };
            let (a, b) = (v(), v());
            assert_eq!(
                dot_with::<true>(&a, &b).to_bits(),
                dot_with::<false>(&a, &b).to_bits(),
                "n = {n}"
            );
        }
    }
}

/// A file in the temp directory, removed when dropped.
struct TempFile(std::path::PathBuf);

impl TempFile {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir();
        Self(dir.join(format!("edgerank-{}-{name}.npy", std::process::id())))
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        // Best effort: a left-over file in the temp directory fails no test.
        let _ = std::fs::remove_file(&self.0);
    }
}

/// `n` items with dimensions (emb 5, genre 3, dense 4) -> a 16-float row, or
/// (emb 20, ...) -> 32: random values, some unknown and some huge `first_ts`.
fn random_table(n: usize, emb_dim: usize) -> (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f64>) {
    let mut rng = crate::rng::SplitMix64::new(11);
    let mut v =
        |len: usize| -> Vec<f32> { (0..len).map(|_| rng.next_f64() as f32 - 0.5).collect() };
    let (dense, emb, genre) = (v(n * 4), v(n * emb_dim), v(n * 3));
    let ts = (0..n)
        .map(|i| match i % 3 {
            0 => -1.0,
            1 => 1.7e9 + i as f64 * 0.123_456_789,
            _ => f64::MAX / (i as f64 + 1.0),
        })
        .collect();
    (dense, emb, genre, ts)
}

fn table<'a>(
    (dense, emb, genre, ts): &'a (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f64>),
    emb_dim: usize,
) -> ItemTable<'a> {
    let n = ts.len();
    ItemTable {
        dense: Matrix::new("d", dense, n, 4).unwrap(),
        emb: Matrix::new("e", emb, n, emb_dim).unwrap(),
        genre: Matrix::new("g", genre, n, 3).unwrap(),
        first_ts: ts,
    }
}

fn layout(emb_dim: usize) -> RowLayout {
    RowLayout {
        emb_dim,
        genre_dim: 3,
        dense_dim: 4,
    }
}

fn item_rows_error(err: Error) -> String {
    match err {
        Error::ItemRows { reason, .. } => reason,
        other => panic!("expected Error::ItemRows, got {other:?}"),
    }
}

#[test]
fn mapped_rows_are_the_packed_rows_bit_for_bit() {
    for (emb_dim, stride) in [(5, 16), (20, 32)] {
        let data = random_table(37, emb_dim);
        let file = TempFile::new(&format!("same-{emb_dim}"));
        write_item_rows(&file.0, &table(&data, emb_dim)).unwrap();
        let mapped = Assembler::open(&file.0, layout(emb_dim)).unwrap();
        let owned = Assembler::new(&table(&data, emb_dim)).unwrap();
        assert_eq!(layout(emb_dim).stride(), stride);
        assert_eq!(mapped.n_items(), 37);
        let bits = |a: &Assembler| -> Vec<u32> {
            a.items.table().floats.iter().map(|x| x.to_bits()).collect()
        };
        assert_eq!(bits(&mapped).len(), 37 * stride);
        assert_eq!(bits(&mapped), bits(&owned));
        let ptr = mapped.items.table().floats.as_ptr();
        assert_eq!(ptr.addr() % 64, 0, "rows start on a cache line");
        let (emb, genre) = (vec![0.25f32; emb_dim], [1.0f32, -1.0, 0.5]);
        let mut u = user(&emb, &genre);
        u.now_ts = 1.8e9;
        let all: Vec<u32> = (0..37).rev().collect();
        assert_eq!(
            mapped.assemble(&u, &all).unwrap(),
            owned.assemble(&u, &all).unwrap()
        );
    }
}

#[test]
fn columns_locate_each_array_in_a_packed_row() {
    let columns = layout(20).columns();
    let names: Vec<&str> = columns.iter().map(|(name, _)| *name).collect();
    assert_eq!(names, ["emb", "genre", "dense", "first_ts"]);
    let ranges: Vec<_> = columns.iter().map(|(_, r)| r.clone()).collect();
    assert_eq!(ranges, [0..20, 20..23, 23..27, 27..29]);
    assert!(ranges[3].end <= layout(20).stride());

    let data = random_table(9, 20);
    let packed = Assembler::new(&table(&data, 20)).unwrap();
    let (floats, stride) = (packed.items.table().floats, layout(20).stride());
    for i in 0..9 {
        let row = &floats[i * stride..(i + 1) * stride];
        assert_eq!(&row[ranges[0].clone()], &data.1[i * 20..(i + 1) * 20]);
        assert_eq!(&row[ranges[1].clone()], &data.2[i * 3..(i + 1) * 3]);
        assert_eq!(&row[ranges[2].clone()], &data.0[i * 4..(i + 1) * 4]);
        let (lo, hi) = (
            row[ranges[3].start].to_bits(),
            row[ranges[3].start + 1].to_bits(),
        );
        assert_eq!(
            f64::from_bits(u64::from(lo) | (u64::from(hi) << 32)),
            data.3[i]
        );
    }
}

#[test]
fn write_item_rows_checks_the_table() {
    let mut data = random_table(4, 5);
    data.3[2] = f64::NAN;
    let file = TempFile::new("write-nan");
    let err = write_item_rows(&file.0, &table(&data, 5)).unwrap_err();
    assert!(matches!(
        err,
        Error::InvalidValue {
            what: "item_first_ts",
            ..
        }
    ));
    assert!(!file.0.exists(), "nothing written for a bad table");
}

#[test]
fn open_rejects_a_wrong_stride_or_length() {
    let data = random_table(6, 20);
    let file = TempFile::new("stride");
    write_item_rows(&file.0, &table(&data, 20)).unwrap();
    let reason = item_rows_error(Assembler::open(&file.0, layout(5)).unwrap_err());
    assert_eq!(
        reason,
        "rows of 32 floats, expected 16 (the bundle's dimensions)"
    );

    let bytes = std::fs::read(&file.0).unwrap();
    std::fs::write(&file.0, &bytes[..bytes.len() - 4]).unwrap();
    let reason = item_rows_error(Assembler::open(&file.0, layout(20)).unwrap_err());
    assert_eq!(
        reason,
        format!(
            "{} bytes, expected {} (6 rows of 32 floats after a 128-byte header)",
            bytes.len() - 4,
            bytes.len()
        )
    );
}

#[test]
fn open_rejects_misaligned_data_and_other_headers() {
    let file = TempFile::new("header");
    let open = |bytes: &[u8]| {
        std::fs::write(&file.0, bytes).unwrap();
        item_rows_error(Assembler::open(&file.0, layout(5)).unwrap_err())
    };
    // A valid header with 16 more bytes of padding: the data starts at 144.
    let mut header = crate::item_rows::header(1, 16);
    let len = u16::from_le_bytes([header[8], header[9]]) + 16;
    header[8..10].copy_from_slice(&len.to_le_bytes());
    header.splice(header.len() - 1..header.len() - 1, [b' '; 16]);
    let mut bytes = header.clone();
    bytes.extend_from_slice(&[0u8; 64]);
    assert_eq!(open(&bytes), "data at byte 144, not on a 64-byte line");

    // The same length of header with one value changed, and one row of data.
    let good = crate::item_rows::header(1, 16);
    let swap = |from: &str, to: &str| -> Vec<u8> {
        let dict = std::str::from_utf8(&good[10..]).unwrap();
        assert!(dict.contains(from) && from.len() == to.len());
        let mut b = good[..10].to_vec();
        b.extend_from_slice(dict.replace(from, to).as_bytes());
        b.extend_from_slice(&[0u8; 64]);
        b
    };
    assert!(open(&swap("'<f4'", "'<f8'")).starts_with("dtype is not little-endian f32"));
    assert_eq!(
        open(&swap("False", "True ")),
        "rows are in Fortran order, expected C order"
    );
    assert_eq!(
        open(&swap("(1, 16)", "(16,  )")),
        "shape [16], expected 2 dimensions"
    );
    assert_eq!(
        open(b"PK\x03\x04 not numpy"),
        "not a .npy file (no NumPy magic)"
    );
    let mut v2 = good.clone();
    v2[6] = 2;
    assert_eq!(open(&v2), "npy format 2.0, expected 1.0");
}

#[test]
fn open_rejects_nan_first_ts_and_names_a_missing_file() {
    let data = random_table(3, 5);
    let file = TempFile::new("nan");
    write_item_rows(&file.0, &table(&data, 5)).unwrap();
    let mut bytes = std::fs::read(&file.0).unwrap();
    // Row 1's first_ts: floats 12 and 13 of 16, after the 128-byte header.
    let at = 128 + (16 + 12) * 4;
    bytes[at..at + 8].copy_from_slice(&f64::NAN.to_bits().to_le_bytes());
    std::fs::write(&file.0, &bytes).unwrap();
    let err = Assembler::open(&file.0, layout(5)).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}: first_ts of row 1 is NaN (unknown is negative)",
            file.0.display()
        )
    );

    let missing = TempFile::new("missing");
    let err = Assembler::open(&missing.0, layout(5)).unwrap_err();
    assert!(err
        .to_string()
        .starts_with(&format!("{}: ", missing.0.display())));
    assert!(item_rows_error(err).contains("No such file"));
}
