use super::*;

/// Items 0..5 with primary genres 0, 0, 1, 1, 2.
fn reranker() -> Reranker {
    Reranker::new(vec![0, 0, 1, 1, 2])
}

const CANDS: [u32; 5] = [0, 1, 2, 3, 4];
const SCORES: [f32; 5] = [5., 4., 3., 2., 1.];

fn positions(k: i64, cap: i64) -> Vec<u32> {
    reranker()
        .rerank(&CANDS, &SCORES, k, cap, 0.0, 0)
        .unwrap()
        .positions
}

#[test]
fn order_is_score_desc_ties_by_position_nan_last() {
    let s = [
        0.5,
        f32::NAN,
        0.9,
        0.5,
        f32::NEG_INFINITY,
        f32::NAN,
        -0.0,
        0.0,
    ];
    assert_eq!(score_order(&s), [2, 0, 3, 6, 7, 4, 1, 5]);
}

/// The order as the comparator of the documentation states it.
fn order_by_comparator(scores: &[f32]) -> Vec<u32> {
    use std::cmp::Ordering;
    let mut order: Vec<u32> = (0..scores.len() as u32).collect();
    order.sort_by(|&a, &b| {
        let (sa, sb) = (scores[a as usize], scores[b as usize]);
        let by_score = match (sa.is_nan(), sb.is_nan()) {
            (false, false) => sb.partial_cmp(&sa).unwrap_or(Ordering::Equal),
            (nan_a, nan_b) => nan_a.cmp(&nan_b),
        };
        by_score.then(a.cmp(&b))
    });
    order
}

#[test]
fn integer_keys_give_the_comparator_order() {
    let special = [
        0.0,
        -0.0,
        f32::NAN,
        -f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::MIN_POSITIVE,
        -f32::MIN_POSITIVE,
        f32::from_bits(1),
        -f32::from_bits(1),
        f32::MAX,
        f32::MIN,
        1.0,
        -1.0,
    ];
    let mut rng = crate::rng::SplitMix64::new(9);
    for round in 0..200 {
        let n = (rng.next_u64() % 600) as usize;
        let scores: Vec<f32> = (0..n)
            .map(|_| match rng.next_u64() % 4 {
                0 => special[(rng.next_u64() % special.len() as u64) as usize],
                // few distinct values: many ties
                1 => (rng.next_u64() % 5) as f32 - 2.0,
                2 => f32::from_bits(rng.next_u64() as u32),
                _ => rng.next_f64() as f32,
            })
            .collect();
        assert_eq!(
            score_order(&scores),
            order_by_comparator(&scores),
            "round {round}"
        );
    }
}

#[test]
fn genre_cap_then_skipped_in_order() {
    assert_eq!(positions(3, 1), [0, 2, 4]);
    assert_eq!(positions(2, 1), [0, 2]);
    assert_eq!(positions(5, 1), [0, 2, 4, 1, 3]);
    assert_eq!(positions(9, 1), [0, 2, 4, 1, 3]);
    assert_eq!(positions(4, 2), [0, 1, 2, 3]);
}

#[test]
fn non_positive_cap_means_no_cap() {
    assert_eq!(positions(3, 0), [0, 1, 2]);
    assert_eq!(positions(3, -1), [0, 1, 2]);
    assert_eq!(positions(0, 1), Vec::<u32>::new());
}

#[test]
fn positions_index_the_inputs_not_item_ids() {
    let out = reranker()
        .rerank(&[4, 4, 0], &[1., 3., 2.], 3, 0, 0.0, 0)
        .unwrap();
    assert_eq!(out.positions, [1, 2, 0]);
}

#[test]
fn exploration_swaps_leftovers_in_with_the_documented_draws() {
    let out = reranker().rerank(&CANDS, &SCORES, 2, 0, 1.0, 42).unwrap();
    // Replay the draws: slot 0 and 1 both explore (u < 1 always).
    let mut rng = SplitMix64::new(42);
    let (mut slots, mut rest) = (vec![0u32, 1], vec![2u32, 3, 4]);
    for slot in &mut slots {
        rng.next_u64();
        let j = (rng.next_u64() % rest.len() as u64) as usize;
        std::mem::swap(slot, &mut rest[j]);
    }
    assert_eq!(out.positions, slots);
    assert_eq!(out.explored, [true, true]);
}

#[test]
fn exploration_needs_leftovers_and_zero_epsilon_never_explores() {
    let out = reranker().rerank(&CANDS, &SCORES, 5, 0, 1.0, 7).unwrap();
    assert_eq!(out.positions, [0, 1, 2, 3, 4]);
    assert_eq!(out.explored, [false; 5]);
    let out = reranker().rerank(&CANDS, &SCORES, 2, 0, 0.0, 7).unwrap();
    assert_eq!(out.explored, [false; 2]);
}

#[test]
fn exploration_rate_is_about_epsilon() {
    let cands: Vec<u32> = (0..5).cycle().take(1000).collect();
    let scores: Vec<f32> = (0..1000).map(|i| i as f32).collect();
    let out = reranker().rerank(&cands, &scores, 500, 0, 0.25, 3).unwrap();
    let n = out.explored.iter().filter(|&&e| e).count();
    assert!((100..150).contains(&n), "{n}");
}

#[test]
fn rejects_bad_inputs() {
    let r = reranker();
    let err = r.rerank(&CANDS, &SCORES[..4], 2, 0, 0.0, 0).unwrap_err();
    assert!(matches!(
        err,
        Error::Length {
            what: "scores",
            expected: 5,
            got: 4
        }
    ));
    let err = r.rerank(&[0, 5], &[0.; 2], 2, 0, 0.0, 0).unwrap_err();
    assert!(matches!(
        err,
        Error::UnknownItem {
            id: 5,
            index: 1,
            n_items: 5,
            ..
        }
    ));
    let err = r.rerank(&CANDS, &SCORES, -1, 0, 0.0, 0).unwrap_err();
    assert!(matches!(
        err,
        Error::InvalidValue {
            what: "n_results",
            ..
        }
    ));
    for eps in [-0.1, 1.1, f64::NAN] {
        let err = r.rerank(&CANDS, &SCORES, 2, 0, eps, 0).unwrap_err();
        assert!(matches!(
            err,
            Error::InvalidValue {
                what: "epsilon",
                ..
            }
        ));
    }
}
