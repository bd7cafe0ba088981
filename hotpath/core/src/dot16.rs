//! Dot products of an f32 query with f32 rows or i8 codes in 16 lanes: lane
//! `d % 16` accumulates, then the lanes are summed pairwise (8 + 8, 4 + 4, ...).
//! With `AVX2` (the caller has checked the CPU) the lanes sit in two 256-bit
//! registers and the i8 codes are converted there; the products and sums are
//! the same, in the same order (mul then add, no FMA), so both paths return
//! the same bits.

const LANES: usize = 16;

/// A stored value the dot products read: f32 as it is, i8 codes converted (exactly) to f32.
pub(crate) trait Value: Copy {
    fn float(self) -> f32;
    /// The 16 lanes of `sum(q[d] * x[d])` over whole chunks of 16, with AVX2.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[cfg(target_arch = "x86_64")]
    unsafe fn lanes_avx2(q: &[f32], x: &[Self]) -> [f32; LANES];
}

impl Value for f32 {
    #[inline(always)]
    fn float(self) -> f32 {
        self
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn lanes_avx2(q: &[f32], x: &[f32]) -> [f32; LANES] {
        use std::arch::x86_64::_mm256_loadu_ps;
        lanes_with(q, x, |b| {
            (
                _mm256_loadu_ps(b.as_ptr()),
                _mm256_loadu_ps(b.as_ptr().add(8)),
            )
        })
    }
}

impl Value for i8 {
    #[inline(always)]
    fn float(self) -> f32 {
        f32::from(self)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn lanes_avx2(q: &[f32], x: &[i8]) -> [f32; LANES] {
        use std::arch::x86_64::{
            _mm256_cvtepi32_ps, _mm256_cvtepi8_epi32, _mm_loadu_si128, _mm_unpackhi_epi64,
        };
        lanes_with(q, x, |b| {
            let c = _mm_loadu_si128(b.as_ptr().cast());
            (
                _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(c)),
                _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_unpackhi_epi64(c, c))),
            )
        })
    }
}

/// Lanes 0-7 and 8-15 in two 256-bit registers; `load` gives a chunk's 16
/// values as f32 (mul, then add: no FMA, so every lane rounds as in `dot`'s
/// portable loop).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn lanes_with<T>(
    q: &[f32],
    x: &[T],
    load: impl Fn(&[T]) -> (std::arch::x86_64::__m256, std::arch::x86_64::__m256),
) -> [f32; LANES] {
    use std::arch::x86_64::{
        _mm256_add_ps, _mm256_loadu_ps, _mm256_mul_ps, _mm256_setzero_ps, _mm256_storeu_ps,
    };
    let (mut lo, mut hi) = (_mm256_setzero_ps(), _mm256_setzero_ps());
    for (a, b) in q.chunks_exact(LANES).zip(x.chunks_exact(LANES)) {
        let (b_lo, b_hi) = load(b);
        lo = _mm256_add_ps(lo, _mm256_mul_ps(_mm256_loadu_ps(a.as_ptr()), b_lo));
        hi = _mm256_add_ps(hi, _mm256_mul_ps(_mm256_loadu_ps(a.as_ptr().add(8)), b_hi));
    }
    let mut out = [0.0f32; LANES];
    _mm256_storeu_ps(out.as_mut_ptr(), lo);
    _mm256_storeu_ps(out.as_mut_ptr().add(8), hi);
    out
}

/// `sum(q[d] * x[d])` with lane `d % 16` accumulating, the lanes summed
/// pairwise (8 + 8, 4 + 4, ...): a fixed order, the same with AVX2 (`AVX2`
/// only when the CPU has it) as without.
#[inline(always)]
pub(crate) fn dot<const AVX2: bool, T: Value>(q: &[f32], x: &[T]) -> f32 {
    let n = q.len().min(x.len());
    let body = n - n % LANES;
    #[cfg(target_arch = "x86_64")]
    let mut acc = if AVX2 {
        // SAFETY: callers pass `AVX2` only when the CPU has AVX2.
        unsafe { T::lanes_avx2(&q[..body], &x[..body]) }
    } else {
        lanes(&q[..body], &x[..body])
    };
    #[cfg(not(target_arch = "x86_64"))]
    let mut acc = lanes(&q[..body], &x[..body]);
    for (l, (a, b)) in q[body..n].iter().zip(&x[body..n]).enumerate() {
        acc[l] += a * b.float();
    }
    let mut width = LANES / 2;
    while width > 0 {
        for l in 0..width {
            acc[l] += acc[l + width];
        }
        width /= 2;
    }
    acc[0]
}

/// The portable lanes: lane `l` accumulates the products `l, l + 16, ...`.
#[inline(always)]
fn lanes<T: Value>(q: &[f32], x: &[T]) -> [f32; LANES] {
    let mut acc = [0.0f32; LANES];
    for (a, b) in q.chunks_exact(LANES).zip(x.chunks_exact(LANES)) {
        for l in 0..LANES {
            acc[l] += a[l] * b[l].float();
        }
    }
    acc
}
