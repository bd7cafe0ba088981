//! Candidate blending: merge ranked sources under per-source quotas into a
//! deduplicated pool, recording which source contributed each item.

use std::cell::RefCell;

use crate::error::{check_ids, check_len, non_negative, Error, Result};

/// One ranked candidate source, in priority order within the call.
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    pub items: &'a [u32],
    pub scores: &'a [f32],
    /// How many items this source may contribute in the first pass.
    pub quota: i64,
}

/// The pool, in take order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Blended {
    pub items: Vec<u32>,
    /// Index into the `sources` list of the source that took each item.
    pub source: Vec<u8>,
    pub score: Vec<f32>,
}

/// Knows the item universe; holds no per-call state.
#[derive(Debug, Clone)]
pub struct Blender {
    n_items: usize,
}

impl Blender {
    pub fn new(n_items: usize) -> Self {
        Self { n_items }
    }

    pub fn n_items(&self) -> usize {
        self.n_items
    }

    /// Pass 1 takes up to `quota` new items from each source in turn; pass 2
    /// tops the pool up from where each source stopped. Both stop at `pool_size`.
    pub fn blend(
        &self,
        sources: &[Source<'_>],
        exclude: &[u32],
        pool_size: i64,
    ) -> Result<Blended> {
        let pool_size = non_negative("pool_size", pool_size)?;
        if sources.len() > usize::from(u8::MAX) + 1 {
            return Err(Error::InvalidValue {
                what: "sources",
                reason: format!("at most 256 sources, got {}", sources.len()),
            });
        }
        let mut quotas = Vec::with_capacity(sources.len());
        for s in sources {
            check_len("scores (of a source)", s.items.len(), s.scores.len())?;
            check_ids("items (of a source)", s.items, self.n_items)?;
            quotas.push(non_negative("quota", s.quota)?);
        }
        check_ids("exclude", exclude, self.n_items)?;

        let available: usize = sources.iter().map(|s| s.items.len()).sum();
        let cap = pool_size.min(available);
        let mut out = Blended {
            items: Vec::with_capacity(cap),
            source: Vec::with_capacity(cap),
            score: Vec::with_capacity(cap),
        };
        let mut cursors = vec![0usize; sources.len()];
        SEEN.with_borrow_mut(|bits| {
            let mut seen = Seen::new(bits, self.n_items, exclude.len() + cap);
            for &item in exclude {
                seen.insert(item);
            }
            for (s, src) in sources.iter().enumerate() {
                let mut taken = 0;
                while taken < quotas[s] && out.items.len() < pool_size {
                    let Some(took) = step(src, s, &mut cursors[s], &mut seen, &mut out) else {
                        break;
                    };
                    taken += usize::from(took);
                }
            }
            for (s, src) in sources.iter().enumerate() {
                while out.items.len() < pool_size {
                    if step(src, s, &mut cursors[s], &mut seen, &mut out).is_none() {
                        break;
                    }
                }
            }
        });
        Ok(out)
    }
}

/// Looks at the next item of `src`: `None` when exhausted, else whether it was taken.
fn step(
    src: &Source<'_>,
    s: usize,
    cursor: &mut usize,
    seen: &mut Seen<'_>,
    out: &mut Blended,
) -> Option<bool> {
    let j = *cursor;
    let &item = src.items.get(j)?;
    *cursor = j + 1;
    let take = seen.insert(item);
    if take {
        out.items.push(item);
        out.source.push(s as u8);
        out.score.push(src.scores[j]);
    }
    Some(take)
}

thread_local! {
    /// One bit per item, all clear between calls; grown to the largest
    /// universe this thread has blended over.
    static SEEN: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
}

/// The set of items excluded or already taken in one call: a bit per item in
/// the thread's `SEEN` words (a hash set cost most of the call). Only the
/// words it set are cleared again, on drop, also when unwinding.
struct Seen<'a> {
    bits: &'a mut Vec<u64>,
    touched: Vec<u32>,
}

impl<'a> Seen<'a> {
    fn new(bits: &'a mut Vec<u64>, n_items: usize, capacity: usize) -> Self {
        let words = n_items.div_ceil(64);
        if bits.len() < words {
            bits.resize(words, 0);
        }
        debug_assert!(bits.iter().all(|&w| w == 0));
        Self {
            bits,
            touched: Vec::with_capacity(capacity),
        }
    }

    /// Adds `item` (already checked `< n_items`); false if it was there.
    #[inline]
    fn insert(&mut self, item: u32) -> bool {
        let (word, bit) = ((item / 64) as usize, 1u64 << (item % 64));
        let w = &mut self.bits[word];
        if *w & bit != 0 {
            return false;
        }
        *w |= bit;
        self.touched.push(item);
        true
    }
}

impl Drop for Seen<'_> {
    fn drop(&mut self) {
        for &item in &self.touched {
            self.bits[(item / 64) as usize] = 0;
        }
    }
}

#[cfg(test)]
#[path = "blend_tests.rs"]
mod tests;
