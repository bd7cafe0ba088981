//! Feature assembly: one dense row per candidate,
//! `[user_dense | item_dense[i] | cross(4) | context]`.

use std::ops::Range;
use std::path::Path;

use crate::error::{check_ids, check_len, Error, Result};
use crate::item_rows::{self, MappedRows};
use crate::ln1p::{ln_1p, ln_1p_pair};

/// Number of cross features between the user and the item.
pub const N_CROSS: usize = 4;

const SECONDS_PER_DAY: f64 = 86_400.0;
/// How many candidates ahead to prefetch item rows.
const PREFETCH_AHEAD: usize = 4;
/// Candidates whose item ages are computed together (even: pairs).
const BLOCK: usize = 8;

/// A borrowed row-major `rows x cols` table.
#[derive(Debug, Clone, Copy)]
pub struct Matrix<'a, T> {
    data: &'a [T],
    rows: usize,
    cols: usize,
}

impl<'a, T> Matrix<'a, T> {
    pub fn new(what: &'static str, data: &'a [T], rows: usize, cols: usize) -> Result<Self> {
        check_len(what, rows.saturating_mul(cols), data.len())?;
        Ok(Self { data, rows, cols })
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    fn row(&self, i: usize) -> &'a [T] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }
}

/// The per-item arrays, borrowed: [`Assembler::new`] copies them into its
/// packed layout, [`write_item_rows`] writes that layout to a file.
#[derive(Debug, Clone, Copy)]
pub struct ItemTable<'a> {
    pub dense: Matrix<'a, f32>,
    pub emb: Matrix<'a, f32>,
    pub genre: Matrix<'a, f32>,
    /// Unix seconds of the item's first appearance; negative means unknown.
    pub first_ts: &'a [f64],
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

/// Holds the item table (immutable: packed in memory, or a mapped item rows
/// file) and assembles feature rows.
#[derive(Debug)]
pub struct Assembler {
    items: PackedItems,
}

impl Assembler {
    /// Checks the table and copies it into one packed row per item.
    pub fn new(items: &ItemTable<'_>) -> Result<Self> {
        let layout = RowLayout::check(items)?;
        let mut lines = Vec::with_capacity(items.first_ts.len() * layout.lines_per_row());
        // Built row by row into capacity: no zeroing pass over the whole table.
        let mut row = vec![Line::default(); layout.lines_per_row()];
        for i in 0..items.first_ts.len() {
            layout.pack(items, i, Line::floats_mut(&mut row));
            lines.extend_from_slice(&row);
        }
        Ok(Self {
            items: PackedItems {
                n_items: items.first_ts.len(),
                storage: Storage::Owned(lines),
                layout,
            },
        })
    }

    /// Maps an item rows file (see [`write_item_rows`]) read-only, no copy:
    /// checks its header, that its rows have `layout`'s stride and start on a
    /// cache line, its length, and that no `first_ts` is NaN.
    pub fn open(path: &Path, layout: RowLayout) -> Result<Self> {
        Self::open_checked(path, layout, true)
    }

    /// As [`Assembler::open`]; with `check_times` false, the rows' `first_ts`
    /// are not scanned for NaN (a pass over every row's page): for a file whose
    /// values were checked before, by whoever vouches for it.
    pub fn open_checked(path: &Path, layout: RowLayout, check_times: bool) -> Result<Self> {
        let map = MappedRows::open(path, layout.stride())?;
        let items = PackedItems {
            n_items: map.rows(),
            storage: Storage::Mapped(map),
            layout,
        };
        if !check_times {
            return Ok(Self { items });
        }
        let table = items.table();
        if let Some(i) = (0..items.n_items).position(|i| table.first_ts(i).is_nan()) {
            return Err(Error::ItemRows {
                path: path.display().to_string(),
                reason: format!("first_ts of row {i} is NaN (unknown is negative)"),
            });
        }
        Ok(Self { items })
    }

    pub fn n_items(&self) -> usize {
        self.items.n_items
    }

    pub fn item_dim(&self) -> usize {
        self.items.layout.dense_dim
    }

    pub fn emb_dim(&self) -> usize {
        self.items.layout.emb_dim
    }

    pub fn n_genres(&self) -> usize {
        self.items.layout.genre_dim
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
        let total = candidates.len() * width;
        let mut out: Vec<f32> = Vec::with_capacity(total);
        let rows = Rows {
            user,
            candidates,
            width,
            recency,
            base: out.as_mut_ptr(),
        };
        let table = self.items.table();
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx") {
            // SAFETY: the CPU has AVX; `rows.base` has capacity for `total`.
            unsafe { table.fill_avx(&rows) };
        } else {
            // SAFETY: `rows.base` has capacity for `total` values.
            unsafe { table.fill::<false>(&rows) };
        }
        #[cfg(not(target_arch = "x86_64"))]
        // SAFETY: `rows.base` has capacity for `total` values.
        unsafe {
            table.fill::<false>(&rows)
        };
        // SAFETY: the loop above wrote every one of the `total` values.
        unsafe { out.set_len(total) };
        debug_assert_eq!(out.len(), candidates.len() * width);
        Ok(out)
    }
}

/// One call's rows to write: `candidates.len()` rows of `width` floats from `base`.
struct Rows<'a> {
    user: &'a UserFeatures<'a>,
    candidates: &'a [u32],
    width: usize,
    recency: f32,
    base: *mut f32,
}

/// Checks `items` like [`Assembler::new`] and writes them as an item rows file:
/// the packed layout, one row per item, that [`Assembler::open`] maps.
pub fn write_item_rows(path: &Path, items: &ItemTable<'_>) -> Result<()> {
    let layout = RowLayout::check(items)?;
    item_rows::write(path, items.first_ts.len(), layout.stride(), |i, row| {
        layout.pack(items, i, row);
    })
}

impl Table<'_> {
    /// `fill` with the dot products in AVX registers.
    ///
    /// # Safety
    /// As `fill`, and the CPU must support AVX.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx")]
    unsafe fn fill_avx(&self, rows: &Rows<'_>) {
        self.fill::<true>(rows);
    }

    /// Writes every row. Rows go into uninitialised capacity through a raw
    /// pointer, four floats per move: no memset of the matrix, no memcpy call
    /// per short segment, no bounds checks per segment. The item ages (a
    /// logarithm each) are computed a block at a time, two per SSE2 op.
    ///
    /// # Safety
    /// `rows.base` must be valid for `candidates.len() * width` writes, the
    /// candidates checked `< n_items`, and `width` the sum of the user's dense
    /// and context lengths, `dense_dim` and `N_CROSS`; with `AVX`, the CPU
    /// must support AVX.
    #[inline(always)]
    unsafe fn fill<const AVX: bool>(&self, rows: &Rows<'_>) {
        let Rows {
            user,
            candidates,
            width,
            recency,
            base,
        } = *rows;
        let u = user.dense.len();
        let RowLayout {
            emb_dim, dense_dim, ..
        } = self.layout;
        let dense_at = self.layout.dense_at();
        for (b, ids) in candidates.chunks(BLOCK).enumerate() {
            let mut ts = [-1.0f64; BLOCK];
            for (t, &id) in ts.iter_mut().zip(ids) {
                *t = self.first_ts(id as usize);
            }
            let age = days_since_block(user.now_ts, &ts);
            for (k, &id) in ids.iter().enumerate() {
                let j = b * BLOCK + k;
                if let Some(&ahead) = candidates.get(j + PREFETCH_AHEAD) {
                    self.prefetch(ahead as usize);
                }
                let item = self.row(id as usize);
                let cross = [
                    dot_with::<AVX>(user.emb, &item[..emb_dim]),
                    dot_with::<AVX>(user.genre, &item[emb_dim..dense_at]),
                    recency,
                    age[k],
                ];
                // Row `j` spans `j * width .. (j + 1) * width`, inside the
                // capacity, and its four parts (u + dense_dim + N_CROSS + c =
                // width values) are written from slices of exactly those
                // lengths, which cannot overlap the new buffer.
                let row = base.add(j * width);
                copy(row, user.dense);
                copy(row.add(u), &item[dense_at..dense_at + dense_dim]);
                copy(row.add(u + dense_dim), &cross);
                copy(row.add(u + dense_dim + N_CROSS), user.context);
            }
        }
    }
}

/// One cache line of floats; the packed table is made of them so that every
/// item row starts on a line.
#[derive(Debug, Clone, Copy, Default)]
#[repr(C, align(64))]
struct Line([f32; FLOATS_PER_LINE]);

const FLOATS_PER_LINE: usize = 16;

impl Line {
    fn floats(lines: &[Line]) -> &[f32] {
        // SAFETY: `Line` is `repr(C)` over `[f32; 16]` (alignment 64 >= 4, no
        // padding since 64 = 16 * 4), so the lines are `16 * len` floats.
        unsafe { std::slice::from_raw_parts(lines.as_ptr().cast(), lines.len() * FLOATS_PER_LINE) }
    }

    fn floats_mut(lines: &mut [Line]) -> &mut [f32] {
        // SAFETY: as in `floats`, through the unique borrow of `lines`.
        unsafe {
            std::slice::from_raw_parts_mut(lines.as_mut_ptr().cast(), lines.len() * FLOATS_PER_LINE)
        }
    }
}

/// The dimensions of the item arrays, which fix the packed row: `[emb | genre
/// | dense | first_ts]`, padded to whole cache lines, so that each candidate
/// is one contiguous read instead of four scattered ones (the table is far
/// larger than the caches, so each candidate is a cache miss). `first_ts` is
/// stored as the two halves of its f64 bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowLayout {
    pub emb_dim: usize,
    pub genre_dim: usize,
    pub dense_dim: usize,
}

impl RowLayout {
    /// The layout of `items`, whose arrays must agree on the number of items
    /// and hold no NaN `first_ts`.
    fn check(items: &ItemTable<'_>) -> Result<Self> {
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
        Ok(Self {
            emb_dim: items.emb.cols(),
            genre_dim: items.genre.cols(),
            dense_dim: items.dense.cols(),
        })
    }

    /// The columns of a row, in order: `emb`, `genre`, `dense` and
    /// `first_ts` (two floats: the low, then the high half of its f64 bits,
    /// so that on a little-endian machine they read as the f64), each with
    /// its range of floats; padding fills the rest of the `stride`.
    pub fn columns(&self) -> [(&'static str, Range<usize>); 4] {
        let (genre_at, dense_at, ts_at) = (self.emb_dim, self.dense_at(), self.ts_at());
        [
            ("emb", 0..genre_at),
            ("genre", genre_at..dense_at),
            ("dense", dense_at..ts_at),
            ("first_ts", ts_at..ts_at + 2),
        ]
    }

    /// Offset of `dense` in a row.
    fn dense_at(&self) -> usize {
        self.emb_dim + self.genre_dim
    }

    /// Offset of `first_ts`'s two halves, after `dense`.
    fn ts_at(&self) -> usize {
        self.dense_at() + self.dense_dim
    }

    fn lines_per_row(&self) -> usize {
        (self.ts_at() + 2).div_ceil(FLOATS_PER_LINE)
    }

    /// Floats per row: a multiple of 16 (one 64-byte line).
    pub fn stride(&self) -> usize {
        self.lines_per_row() * FLOATS_PER_LINE
    }

    /// Writes item `i`'s packed row into `row` (`stride` floats; the padding is left as it is).
    fn pack(&self, items: &ItemTable<'_>, i: usize, row: &mut [f32]) {
        let (emb, rest) = row.split_at_mut(self.emb_dim);
        let (genre, rest) = rest.split_at_mut(self.genre_dim);
        let (dense, rest) = rest.split_at_mut(self.dense_dim);
        emb.copy_from_slice(items.emb.row(i));
        genre.copy_from_slice(items.genre.row(i));
        dense.copy_from_slice(items.dense.row(i));
        let ts = items.first_ts[i].to_bits();
        rest[0] = f32::from_bits(ts as u32);
        rest[1] = f32::from_bits((ts >> 32) as u32);
    }
}

/// The packed rows: copied into memory, or a checked map of an item rows file.
#[derive(Debug)]
enum Storage {
    Owned(Vec<Line>),
    Mapped(MappedRows),
}

#[derive(Debug)]
struct PackedItems {
    storage: Storage,
    layout: RowLayout,
    n_items: usize,
}

impl PackedItems {
    /// The rows as one slice of `n_items * stride` floats, 64-byte aligned.
    fn table(&self) -> Table<'_> {
        let floats = match &self.storage {
            Storage::Owned(lines) => Line::floats(lines),
            Storage::Mapped(map) => map.floats(),
        };
        Table {
            floats,
            layout: self.layout,
            stride: self.layout.stride(),
        }
    }
}

/// The packed rows of one call.
struct Table<'a> {
    floats: &'a [f32],
    layout: RowLayout,
    stride: usize,
}

impl Table<'_> {
    /// The first `ts_at` floats of item `i`'s row.
    #[inline]
    fn row(&self, i: usize) -> &[f32] {
        let start = i * self.stride;
        &self.floats[start..start + self.layout.ts_at()]
    }

    #[inline]
    fn first_ts(&self, i: usize) -> f64 {
        let at = i * self.stride + self.layout.ts_at();
        let halves = &self.floats[at..at + 2];
        f64::from_bits(u64::from(halves[0].to_bits()) | (u64::from(halves[1].to_bits()) << 32))
    }

    /// Ask for a later candidate's row while this one is assembled.
    #[inline]
    fn prefetch(&self, i: usize) {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            if let Some(row) = self.floats.get(i * self.stride..(i + 1) * self.stride) {
                for line in row.chunks_exact(FLOATS_PER_LINE) {
                    // SAFETY: a prefetch is only a hint, of an address inside the table.
                    unsafe { _mm_prefetch(line.as_ptr().cast::<i8>(), _MM_HINT_T0) };
                }
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = i;
    }
}

/// Copies `src` to `dst`, four floats per move: an element loop over zipped
/// iterators did not vectorize, and a `memcpy` call costs more than these
/// short segments.
///
/// # Safety
/// `dst` must be valid for `src.len()` writes and not overlap `src`.
#[inline(always)]
unsafe fn copy(dst: *mut f32, src: &[f32]) {
    let mut chunks = src.chunks_exact(4);
    let mut d = dst;
    for s in &mut chunks {
        std::ptr::copy_nonoverlapping(s.as_ptr(), d, 4);
        d = d.add(4);
    }
    for (i, &x) in chunks.remainder().iter().enumerate() {
        d.add(i).write(x);
    }
}

/// `ln(1 + max(0, now - ts) / 1 day)` in f64, or -1 when `ts` is unknown (< 0).
fn days_since(now: f64, ts: f64) -> f32 {
    if ts < 0.0 {
        -1.0
    } else {
        ln_1p(days(now, ts)) as f32
    }
}

/// `days_since` of each of a block of times, the logarithms in pairs.
#[inline(always)]
fn days_since_block(now: f64, ts: &[f64; BLOCK]) -> [f32; BLOCK] {
    let mut out = [0.0f32; BLOCK];
    for (o, t) in out.chunks_exact_mut(2).zip(ts.chunks_exact(2)) {
        let ln = ln_1p_pair([days(now, t[0]), days(now, t[1])]);
        for k in 0..2 {
            o[k] = if t[k] < 0.0 { -1.0 } else { ln[k] as f32 };
        }
    }
    out
}

/// `max(0, now - ts) / 1 day`.
#[inline(always)]
fn days(now: f64, ts: f64) -> f64 {
    (now - ts).max(0.0) / SECONDS_PER_DAY
}

/// f32 dot product with eight interleaved accumulators (lane `k % 8`), summed
/// pairwise at the end: a fixed, documented order that the compiler can
/// vectorize, unlike one serial accumulator. (The rows use `dot_with`.)
#[cfg(test)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    dot_with::<false>(a, b)
}

/// `dot`, the eight lanes in one AVX register when `AVX` (the caller has
/// checked the CPU): the same products and sums in the same order.
#[inline(always)]
fn dot_with<const AVX: bool>(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let body = n - n % LANES;
    #[cfg(target_arch = "x86_64")]
    let mut acc = if AVX {
        // SAFETY: `AVX` is only true when the CPU has AVX (see `Assembler::assemble`).
        unsafe { lanes_sum_avx(&a[..body], &b[..body]) }
    } else {
        lanes_sum(&a[..body], &b[..body])
    };
    #[cfg(not(target_arch = "x86_64"))]
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

/// `lanes_sum` with the eight lanes in one 256-bit register (mul, then add:
/// no FMA, so every lane rounds as in `lanes_sum`).
///
/// # Safety
/// The CPU must support AVX.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
#[inline]
unsafe fn lanes_sum_avx(a: &[f32], b: &[f32]) -> [f32; LANES] {
    use std::arch::x86_64::{
        _mm256_add_ps, _mm256_loadu_ps, _mm256_mul_ps, _mm256_setzero_ps, _mm256_storeu_ps,
    };
    debug_assert!(a.len() == b.len() && a.len() % LANES == 0);
    let mut out = [0.0f32; LANES];
    let mut acc = _mm256_setzero_ps();
    for (x, y) in a.chunks_exact(LANES).zip(b.chunks_exact(LANES)) {
        acc = _mm256_add_ps(
            acc,
            _mm256_mul_ps(_mm256_loadu_ps(x.as_ptr()), _mm256_loadu_ps(y.as_ptr())),
        );
    }
    _mm256_storeu_ps(out.as_mut_ptr(), acc);
    out
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
