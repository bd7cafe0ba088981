use super::*;

fn src<'a>(items: &'a [u32], scores: &'a [f32], quota: i64) -> Source<'a> {
    Source {
        items,
        scores,
        quota,
    }
}

#[test]
fn quotas_first_then_top_up_in_priority_order() {
    let b = Blender::new(100);
    let a = src(&[1, 2, 3, 4], &[0.9, 0.8, 0.7, 0.6], 2);
    let c = src(&[10, 11, 12], &[0.5, 0.4, 0.3], 1);
    let out = b.blend(&[a, c], &[], 6).unwrap();
    assert_eq!(out.items, [1, 2, 10, 3, 4, 11]);
    assert_eq!(out.source, [0, 0, 1, 0, 0, 1]);
    assert_eq!(out.score, [0.9, 0.8, 0.5, 0.7, 0.6, 0.4]);
}

#[test]
fn skips_excluded_and_duplicates_keeping_first_takers_score() {
    let b = Blender::new(100);
    let a = src(&[1, 2, 3], &[0.9, 0.8, 0.7], 2);
    let c = src(&[2, 5, 1, 6], &[0.1, 0.2, 0.3, 0.4], 2);
    let out = b.blend(&[a, c], &[1], 10).unwrap();
    // a: 1 excluded, takes 2, 3. c: 2 taken, takes 5, 1 excluded, takes 6.
    assert_eq!(out.items, [2, 3, 5, 6]);
    assert_eq!(out.source, [0, 0, 1, 1]);
    assert_eq!(out.score, [0.8, 0.7, 0.2, 0.4]);
}

#[test]
fn stops_everything_at_pool_size_in_pass_one() {
    let b = Blender::new(100);
    let a = src(&[1, 2, 3], &[0.; 3], 3);
    let c = src(&[4, 5], &[0.; 2], 2);
    let out = b.blend(&[a, c], &[], 2).unwrap();
    assert_eq!(out.items, [1, 2]);
    assert_eq!(b.blend(&[a, c], &[], 0).unwrap(), Blended::default());
}

#[test]
fn pass_two_resumes_each_source_where_pass_one_stopped() {
    let b = Blender::new(100);
    // Pass 1: a's quota 1 takes 7, c's quota 0 takes nothing. Pass 2: a resumes at 8.
    let a = src(&[7, 8, 9], &[0.; 3], 1);
    let c = src(&[8, 20], &[1.0, 2.0], 0);
    let out = b.blend(&[a, c], &[], 4).unwrap();
    assert_eq!(out.items, [7, 8, 9, 20]);
    assert_eq!(out.source, [0, 0, 0, 1]);
}

#[test]
fn exhausted_lists_give_a_short_pool() {
    let b = Blender::new(100);
    let a = src(&[1, 1, 1], &[0.; 3], 5);
    let out = b.blend(&[a], &[], 10).unwrap();
    assert_eq!(out.items, [1]);
    assert_eq!(b.blend(&[], &[], 10).unwrap(), Blended::default());
}

#[test]
fn rejects_bad_inputs() {
    let b = Blender::new(10);
    let err = b.blend(&[src(&[1, 2], &[0.], 1)], &[], 5).unwrap_err();
    assert!(matches!(
        err,
        Error::Length {
            expected: 2,
            got: 1,
            ..
        }
    ));
    let err = b.blend(&[src(&[1, 10], &[0.; 2], 1)], &[], 5).unwrap_err();
    assert!(matches!(
        err,
        Error::UnknownItem {
            id: 10,
            index: 1,
            ..
        }
    ));
    let err = b.blend(&[], &[3, 11], 5).unwrap_err();
    assert!(matches!(
        err,
        Error::UnknownItem {
            what: "exclude",
            id: 11,
            ..
        }
    ));
    let err = b.blend(&[], &[], -1).unwrap_err();
    assert!(matches!(
        err,
        Error::InvalidValue {
            what: "pool_size",
            ..
        }
    ));
    let err = b.blend(&[src(&[1], &[0.], -2)], &[], 5).unwrap_err();
    assert!(matches!(err, Error::InvalidValue { what: "quota", .. }));
    let many = vec![src(&[], &[], 0); 257];
    let err = b.blend(&many, &[], 5).unwrap_err();
    assert!(matches!(
        err,
        Error::InvalidValue {
            what: "sources",
            ..
        }
    ));
}

#[test]
fn calls_on_one_thread_do_not_see_each_others_items() {
    // The seen-bits are per thread and reused: every call must start clear,
    // also across blenders of different universes.
    let small = Blender::new(70);
    let large = Blender::new(10_000);
    let a = src(&[1, 64, 69, 3], &[0.; 4], 4);
    for _ in 0..3 {
        assert_eq!(small.blend(&[a], &[3], 10).unwrap().items, [1, 64, 69]);
        assert_eq!(
            large.blend(&[a], &[9_999], 10).unwrap().items,
            [1, 64, 69, 3]
        );
        let far = src(&[9_999, 1], &[0.; 2], 2);
        assert_eq!(large.blend(&[far], &[], 10).unwrap().items, [9_999, 1]);
    }
    SEEN.with_borrow(|bits| assert!(bits.iter().all(|&w| w == 0)));
}

#[test]
fn an_error_leaves_the_seen_bits_clear() {
    let b = Blender::new(10);
    let a = src(&[1, 2], &[0.; 2], 2);
    assert!(b.blend(&[a], &[10], 5).is_err()); // exclude out of range
    assert_eq!(b.blend(&[a], &[], 5).unwrap().items, [1, 2]);
    SEEN.with_borrow(|bits| assert!(bits.iter().all(|&w| w == 0)));
}
