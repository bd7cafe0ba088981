//! Re-ranking: sort by score, cap items per primary genre, then swap in
//! random leftovers with probability `epsilon` per slot (seeded, reproducible).

use crate::error::{check_ids, check_len, non_negative, Error, Result};
use crate::rng::SplitMix64;

/// The chosen positions (into the input arrays) and which slots were explored.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reranked {
    pub positions: Vec<u32>,
    pub explored: Vec<bool>,
}

/// Holds each item's primary genre (owned, immutable).
#[derive(Debug, Clone)]
pub struct Reranker {
    primary_genre: Vec<u16>,
    /// `max(primary_genre) + 1`: the size of the per-call genre counter.
    genre_slots: usize,
}

impl Reranker {
    pub fn new(primary_genre: Vec<u16>) -> Self {
        let genre_slots = primary_genre
            .iter()
            .max()
            .map_or(0, |&g| usize::from(g) + 1);
        Self {
            primary_genre,
            genre_slots,
        }
    }

    pub fn n_items(&self) -> usize {
        self.primary_genre.len()
    }

    pub fn rerank(
        &self,
        candidates: &[u32],
        scores: &[f32],
        n_results: i64,
        max_per_genre: i64,
        epsilon: f64,
        seed: u64,
    ) -> Result<Reranked> {
        check_len("scores", candidates.len(), scores.len())?;
        check_ids("candidates", candidates, self.n_items())?;
        let n_results = non_negative("n_results", n_results)?;
        if !(0.0..=1.0).contains(&epsilon) {
            return Err(Error::InvalidValue {
                what: "epsilon",
                reason: format!("must be in [0, 1], got {epsilon}"),
            });
        }
        if u32::try_from(candidates.len()).is_err() {
            return Err(Error::InvalidValue {
                what: "candidates",
                reason: "more than 2**32 - 1 candidates".into(),
            });
        }
        let k = n_results.min(candidates.len());
        let order = score_order(scores);
        let mut positions = self.diversify(&order, candidates, k, max_per_genre);
        let explored = explore(&mut positions, &order, epsilon, seed);
        Ok(Reranked {
            positions,
            explored,
        })
    }

    /// Greedy walk of `order` under the per-genre cap, then the skipped ones.
    fn diversify(&self, order: &[u32], candidates: &[u32], k: usize, cap: i64) -> Vec<u32> {
        let mut out = Vec::with_capacity(k);
        let mut skipped = Vec::new();
        let mut count = vec![0i64; if cap > 0 { self.genre_slots } else { 0 }];
        for &p in order {
            if out.len() == k {
                break;
            }
            if cap <= 0 {
                out.push(p);
                continue;
            }
            let g = usize::from(self.primary_genre[candidates[p as usize] as usize]);
            if count[g] < cap {
                count[g] += 1;
                out.push(p);
            } else {
                skipped.push(p);
            }
        }
        let missing = k - out.len();
        out.extend(skipped.into_iter().take(missing));
        out
    }
}

/// Positions by score descending, ties by smaller position, NaN last.
///
/// Each score becomes a `u32` key whose ascending order is the wanted one,
/// and the positions are sorted by key with an LSD radix sort (four stable
/// passes of one byte, skipping a byte all keys share): stable, so ties stay
/// in position order, and no comparisons at all.
fn score_order(scores: &[f32]) -> Vec<u32> {
    let n = scores.len();
    let keys: Vec<u32> = scores.iter().map(|&s| descending_key(s)).collect();
    let mut counts = [[0u32; 256]; 4];
    for &k in &keys {
        for (byte, count) in counts.iter_mut().enumerate() {
            count[((k >> (8 * byte)) & 0xFF) as usize] += 1;
        }
    }
    let mut order: Vec<u32> = (0..n as u32).collect();
    let mut next = vec![0u32; n];
    for (byte, count) in counts.iter().enumerate() {
        if count.iter().any(|&c| c as usize == n) {
            continue; // every key has the same byte here: the pass keeps the order
        }
        let mut start = [0u32; 256];
        let mut sum = 0;
        for (s, &c) in start.iter_mut().zip(count) {
            *s = sum;
            sum += c;
        }
        for &p in &order {
            let digit = ((keys[p as usize] >> (8 * byte)) & 0xFF) as usize;
            next[start[digit] as usize] = p;
            start[digit] += 1;
        }
        std::mem::swap(&mut order, &mut next);
    }
    order
}

/// A `u32` whose ascending order is the scores' descending order, with
/// `-0.0 == 0.0` and every NaN after every number.
#[inline]
fn descending_key(score: f32) -> u32 {
    if score.is_nan() {
        return u32::MAX;
    }
    // + 0.0 turns -0.0 into +0.0 (round to nearest), so that they tie.
    let bits = (score + 0.0).to_bits();
    // The usual order-preserving map of IEEE bits: flip all bits of a
    // negative, the sign bit of a positive; then invert for descending.
    let ascending = if bits >> 31 == 1 {
        !bits
    } else {
        bits | 0x8000_0000
    };
    // The largest number (+inf) maps to 0x007F_FFFF; NaN's u32::MAX stays last.
    !ascending
}

/// Per slot: one uniform draw; below `epsilon` (and leftovers exist), a second
/// draw picks a leftover to swap with the slot's position.
fn explore(slots: &mut [u32], order: &[u32], epsilon: f64, seed: u64) -> Vec<bool> {
    let mut explored = vec![false; slots.len()];
    if epsilon <= 0.0 {
        // No draw can be below 0, and the draws are not observable.
        return explored;
    }
    let mut in_output = vec![false; order.len()];
    for &p in slots.iter() {
        in_output[p as usize] = true;
    }
    let mut rest: Vec<u32> = order
        .iter()
        .copied()
        .filter(|&p| !in_output[p as usize])
        .collect();
    let mut rng = SplitMix64::new(seed);
    for (slot, flag) in slots.iter_mut().zip(explored.iter_mut()) {
        if rng.next_f64() < epsilon && !rest.is_empty() {
            let j = (rng.next_u64() % rest.len() as u64) as usize;
            std::mem::swap(slot, &mut rest[j]);
            *flag = true;
        }
    }
    explored
}

#[cfg(test)]
#[path = "rerank_tests.rs"]
mod tests;
