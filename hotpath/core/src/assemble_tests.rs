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
