//! Feature assembly: one dense row per candidate,
//! `[user_dense | item_dense[i] | cross(4) | context]`.

use std::mem::MaybeUninit;

use crate::error::{check_ids, check_len, Error, Result};

/// Number of cross features between the user and the item.
pub const N_CROSS: usize = 4;

const SECONDS_PER_DAY: f64 = 86_400.0;
/// How many candidates ahead to prefetch item rows.
const PREFETCH_AHEAD: usize = 4;

/// A row-major `rows x cols` table.
#[derive(Debug, Clone)]
pub struct Matrix<T> {
    data: Vec<T>,
    rows: usize,
    cols: usize,
}

impl<T> Matrix<T> {
    pub fn new(what: &'static str, data: Vec<T>, rows: usize, cols: usize) -> Result<Self> {
        check_len(what, rows.saturating_mul(cols), data.len())?;
        Ok(Self { data, rows, cols })
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    fn row(&self, i: usize) -> &[T] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }
}

/// The per-item arrays, as handed over once per bundle.
#[derive(Debug, Clone)]
pub struct ItemTable {
    pub dense: Matrix<f32>,
    pub emb: Matrix<f32>,
    pub genre: Matrix<f32>,
    /// Unix seconds of the item's first appearance; negative means unknown.
    pub first_ts: Vec<f64>,
}

/// The per-request user side of a row.
#[derive(Debug, Clone, Copy)]
pub struct UserFeatures<'a> {
    pub dense: &'a [f32],
    pub emb: &'a [f32],
    pub genre: &'a [f32],
    /// Unix seconds of the user's last activity; negative means unknown.
    pub last_ts: f64,
    pub now_ts: f64,
    pub context: &'a [f32],
}

/// Holds the item table (owned, immutable) and assembles feature rows.
#[derive(Debug, Clone)]
pub struct Assembler {
    items: ItemTable,
}

impl Assembler {
    pub fn new(items: ItemTable) -> Result<Self> {
        let n = items.first_ts.len();
        check_len("item_dense rows", n, items.dense.rows())?;
        check_len("item_emb rows", n, items.emb.rows())?;
        check_len("item_genre rows", n, items.genre.rows())?;
        if let Some(i) = items.first_ts.iter().position(|t| t.is_nan()) {
            return Err(Error::InvalidValue {
                what: "item_first_ts",
                reason: format!("NaN at index {i} (use a negative value for unknown)"),
            });
        }
        Ok(Self { items })
    }

    pub fn n_items(&self) -> usize {
        self.items.first_ts.len()
    }

    pub fn item_dim(&self) -> usize {
        self.items.dense.cols()
    }

    pub fn emb_dim(&self) -> usize {
        self.items.emb.cols()
    }

    pub fn n_genres(&self) -> usize {
        self.items.genre.cols()
    }

    /// Width of an assembled row.
    pub fn n_features(&self, user_dim: usize, context_dim: usize) -> usize {
        user_dim + self.item_dim() + N_CROSS + context_dim
    }

    /// Row-major `[candidates.len(), n_features]` output.
    pub fn assemble(&self, user: &UserFeatures<'_>, candidates: &[u32]) -> Result<Vec<f32>> {
        check_len("user_emb", self.emb_dim(), user.emb.len())?;
        check_len("user_genre", self.n_genres(), user.genre.len())?;
        if !user.now_ts.is_finite() {
            return Err(Error::InvalidValue {
                what: "now_ts",
                reason: format!("must be finite, got {}", user.now_ts),
            });
        }
        if user.last_ts.is_nan() {
            return Err(Error::InvalidValue {
                what: "user_last_ts",
                reason: "NaN (use a negative value for unknown)".into(),
            });
        }
        check_ids("candidates", candidates, self.n_items())?;

        let (u, c) = (user.dense.len(), user.context.len());
        let width = self.n_features(u, c);
        let recency = days_since(user.now_ts, user.last_ts);
        // Rows are written into uninitialised capacity, element by element: no
        // memset of the matrix and no memcpy call per short segment.
        let total = candidates.len() * width;
        let mut out: Vec<f32> = Vec::with_capacity(total);
        let buf = &mut out.spare_capacity_mut()[..total];
        for (j, (row, &id)) in buf.chunks_exact_mut(width).zip(candidates).enumerate() {
            if let Some(&ahead) = candidates.get(j + PREFETCH_AHEAD) {
                self.prefetch(ahead as usize);
            }
            let i = id as usize;
            let (user_part, rest) = row.split_at_mut(u);
            let (item_part, rest) = rest.split_at_mut(self.item_dim());
            let (cross, context) = rest.split_at_mut(N_CROSS);
            write(user_part, user.dense);
            write(item_part, self.items.dense.row(i));
            write(
                cross,
                &[
                    dot(user.emb, self.items.emb.row(i)),
                    dot(user.genre, self.items.genre.row(i)),
                    recency,
                    days_since(user.now_ts, self.items.first_ts[i]),
                ],
            );
            write(context, user.context);
        }
        // SAFETY: the loop above wrote every one of the `total` values (each row
        // is split into parts of exactly u + item_dim + N_CROSS + c = width).
        unsafe { out.set_len(total) };
        debug_assert_eq!(out.len(), candidates.len() * width);
        Ok(out)
    }
}

impl Assembler {
    /// Ask for a later candidate's rows while this one is assembled: the item
    /// table is far larger than the caches, so each row is a cache miss.
    #[inline]
    fn prefetch(&self, i: usize) {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            const FLOATS_PER_LINE: usize = 16;
            for row in [
                self.items.emb.row(i),
                self.items.dense.row(i),
                self.items.genre.row(i),
            ] {
                let p = row.as_ptr();
                let mut off = 0;
                while off < row.len() {
                    // SAFETY: a prefetch is only a hint; `p + off` is inside `row`.
                    unsafe { _mm_prefetch(p.add(off).cast::<i8>(), _MM_HINT_T0) };
                    off += FLOATS_PER_LINE;
                }
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = i;
    }
}

#[inline(always)]
fn write(dst: &mut [MaybeUninit<f32>], src: &[f32]) {
    for (d, s) in dst.iter_mut().zip(src) {
        d.write(*s);
    }
}

/// `ln(1 + max(0, now - ts) / 1 day)` in f64, or -1 when `ts` is unknown (< 0).
fn days_since(now: f64, ts: f64) -> f32 {
    if ts < 0.0 {
        -1.0
    } else {
        ((now - ts).max(0.0) / SECONDS_PER_DAY).ln_1p() as f32
    }
}

/// f32 dot product with eight interleaved accumulators (lane `k % 8`), summed
/// pairwise at the end: a fixed, documented order that the compiler can
/// vectorize, unlike one serial accumulator.
#[inline]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let body = n - n % LANES;
    let mut acc = lanes_sum(&a[..body], &b[..body]);
    for (k, (x, y)) in a[body..].iter().zip(&b[body..]).enumerate() {
        acc[k] += x * y;
    }
    let quad = [
        acc[0] + acc[4],
        acc[1] + acc[5],
        acc[2] + acc[6],
        acc[3] + acc[7],
    ];
    (quad[0] + quad[2]) + (quad[1] + quad[3])
}

const LANES: usize = 8;

/// Lane `k` accumulates the products `k, k + 8, k + 16, ...` (`a.len()` is a
/// multiple of 8). SSE2 is part of every x86-64 CPU; elsewhere, plain code.
#[cfg(target_arch = "x86_64")]
#[inline]
fn lanes_sum(a: &[f32], b: &[f32]) -> [f32; LANES] {
    use std::arch::x86_64::{_mm_add_ps, _mm_loadu_ps, _mm_mul_ps, _mm_setzero_ps, _mm_storeu_ps};
    debug_assert!(a.len() == b.len() && a.len() % LANES == 0);
    let mut out = [0.0f32; LANES];
    // SAFETY: SSE2 is always available on x86_64; every load reads 4 floats
    // inside an 8-float chunk of `a` or `b`, and the stores write into `out`.
    unsafe {
        let (mut lo, mut hi) = (_mm_setzero_ps(), _mm_setzero_ps());
        for (x, y) in a.chunks_exact(LANES).zip(b.chunks_exact(LANES)) {
            lo = _mm_add_ps(
                lo,
                _mm_mul_ps(_mm_loadu_ps(x.as_ptr()), _mm_loadu_ps(y.as_ptr())),
            );
            hi = _mm_add_ps(
                hi,
                _mm_mul_ps(
                    _mm_loadu_ps(x.as_ptr().add(4)),
                    _mm_loadu_ps(y.as_ptr().add(4)),
                ),
            );
        }
        _mm_storeu_ps(out.as_mut_ptr(), lo);
        _mm_storeu_ps(out.as_mut_ptr().add(4), hi);
    }
    out
}

#[cfg(not(target_arch = "x86_64"))]
#[inline]
fn lanes_sum(a: &[f32], b: &[f32]) -> [f32; LANES] {
    let mut acc = [0.0f32; LANES];
    for (x, y) in a.chunks_exact(LANES).zip(b.chunks_exact(LANES)) {
        for k in 0..LANES {
            acc[k] += x[k] * y[k];
        }
    }
    acc
}

#[cfg(test)]
#[path = "assemble_tests.rs"]
mod tests;
