//! `ln(1 + x)` for `x >= 0` in f64, branch-free so that a batch of them
//! pipelines (the libm call costs ~20 ns each and was half of assembly).
//!
//! Accuracy: a few f64 ulps (the series is truncated far below one ulp;
//! the rest is rounding), so after the cast to f32 the result equals the
//! f32 of libm's `ln_1p` except when the exact value lies within ~1e-15
//! (relative) of the midpoint between two f32s; then it is one f32 ulp away.

/// `ln(2)` split so that `e * LN2_HI` is exact for `|e| < 2^11` (fdlibm's split).
const LN2_HI: f64 = 0.693_147_180_369_123_8; // bits 0x3FE62E42FEE00000
const LN2_LO: f64 = 1.908_214_929_270_587_7e-10; // bits 0x3DEA39EF35793C76
const MANTISSA: u64 = 0x000F_FFFF_FFFF_FFFF;
/// The bits of 1.0: exponent 1023, mantissa 0.
const ONE_BITS: u64 = 0x3FF0_0000_0000_0000;
const EXP_BIAS: f64 = 1023.0;
const TWO_POW_52: f64 = 4_503_599_627_370_496.0;
const TWO_POW_52_BITS: u64 = 0x4330_0000_0000_0000;
/// `1 / (2k + 1)` for `k = 1..=10`: `atanh(s) / s = 1 + z/3 + z^2/5 + ...`
/// with `z = s^2 <= 0.0295`; the first omitted term is below `z^11 / 23 < 1e-18`.
const INV_ODD: [f64; 10] = [
    1.0 / 3.0,
    1.0 / 5.0,
    1.0 / 7.0,
    1.0 / 9.0,
    1.0 / 11.0,
    1.0 / 13.0,
    1.0 / 15.0,
    1.0 / 17.0,
    1.0 / 19.0,
    1.0 / 21.0,
];

/// `ln(1 + x)` for finite `x >= 0` (the caller clamps; other inputs give
/// unspecified values, never a panic).
#[inline(always)]
pub(crate) fn ln_1p(x: f64) -> f64 {
    // Goldberg's trick: ln(1 + x) = ln(u) * x / (u - 1) with u = fl(1 + x)
    // is accurate although u is rounded (u - 1 is exact for u >= 1).
    let u = 1.0 + x;
    let d = u - 1.0;
    let tiny = d == 0.0;
    let scale = x / if tiny { 1.0 } else { d };
    let ln_u = ln_at_least_one(u);
    if tiny {
        x
    } else {
        ln_u * scale
    }
}

/// `ln(u)` for finite `u >= 1`: `u = 2^e * m`, `ln(m) = 2 atanh(s)` with
/// `s = (m - 1) / (m + 1)`. Float compares and selects only (no 64-bit
/// integer compare or conversion), so that SSE2 can do two at a time.
#[inline(always)]
fn ln_at_least_one(u: f64) -> f64 {
    let bits = u.to_bits();
    let m1 = f64::from_bits((bits & MANTISSA) | ONE_BITS); // in [1, 2)
    let big = m1 > std::f64::consts::SQRT_2;
    let m = if big { 0.5 * m1 } else { m1 }; // in [sqrt(1/2), sqrt(2))
                                             // The biased exponent as a float without an int-to-float conversion (which
                                             // SSE2 lacks for 64-bit lanes): 2^52 + k has k in its low mantissa bits.
    let biased = f64::from_bits((bits >> 52) | TWO_POW_52_BITS) - TWO_POW_52;
    let e = biased - EXP_BIAS + if big { 1.0 } else { 0.0 };
    let f = m - 1.0; // exact (Sterbenz)
    let s = f / (2.0 + f);
    let z = s * s;
    let series = estrin(z, |c| c, |a, b| a + b, |a, b| a * b);
    let ln_m = 2.0 * s + 2.0 * s * (z * series);
    e * LN2_HI + (e * LN2_LO + ln_m)
}

/// `sum(INV_ODD[k] * z^k)` by Estrin's scheme: a dependency chain of 7
/// operations instead of Horner's 18, the same for scalars and SSE2 pairs.
#[inline(always)]
fn estrin<T: Copy>(
    z: T,
    constant: impl Fn(f64) -> T,
    add: impl Fn(T, T) -> T,
    mul: impl Fn(T, T) -> T,
) -> T {
    let c = |k: usize| constant(INV_ODD[k]);
    let pair = |k: usize| add(c(k), mul(c(k + 1), z));
    let z2 = mul(z, z);
    let z4 = mul(z2, z2);
    let z8 = mul(z4, z4);
    let low = add(pair(0), mul(pair(2), z2));
    let high = add(pair(4), mul(pair(6), z2));
    add(add(low, mul(high, z4)), mul(pair(8), z8))
}

/// `ln_1p` of two values at once with SSE2 (part of every x86-64 CPU): the
/// same operations in the same order, so each lane is bit-for-bit `ln_1p`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) fn ln_1p_pair(x: [f64; 2]) -> [f64; 2] {
    use std::arch::x86_64::{
        __m128d, _mm_add_pd, _mm_and_pd, _mm_and_si128, _mm_andnot_pd, _mm_castpd_si128,
        _mm_castsi128_pd, _mm_cmpeq_pd, _mm_cmpgt_pd, _mm_div_pd, _mm_loadu_pd, _mm_mul_pd,
        _mm_or_pd, _mm_or_si128, _mm_set1_epi64x, _mm_set1_pd, _mm_setzero_pd, _mm_srli_epi64,
        _mm_storeu_pd, _mm_sub_pd,
    };
    /// `mask ? a : b` lane-wise (`mask` lanes are all ones or all zeros).
    #[inline(always)]
    unsafe fn select(mask: __m128d, a: __m128d, b: __m128d) -> __m128d {
        _mm_or_pd(_mm_and_pd(mask, a), _mm_andnot_pd(mask, b))
    }
    let mut out = [0.0f64; 2];
    // SAFETY: SSE2 is always available on x86_64; the load reads the two
    // values of `x` and the store writes the two of `out`.
    unsafe {
        let set = _mm_set1_pd;
        let x = _mm_loadu_pd(x.as_ptr());
        let one = set(1.0);
        let u = _mm_add_pd(one, x);
        let d = _mm_sub_pd(u, one);
        let tiny = _mm_cmpeq_pd(d, _mm_setzero_pd());
        let scale = _mm_div_pd(x, select(tiny, one, d));

        let bits = _mm_castpd_si128(u);
        let mantissa = _mm_and_si128(bits, _mm_set1_epi64x(MANTISSA as i64));
        let m1 = _mm_castsi128_pd(_mm_or_si128(mantissa, _mm_set1_epi64x(ONE_BITS as i64)));
        let big = _mm_cmpgt_pd(m1, set(std::f64::consts::SQRT_2));
        let m = select(big, _mm_mul_pd(set(0.5), m1), m1);
        let exponent = _mm_or_si128(
            _mm_srli_epi64(bits, 52),
            _mm_set1_epi64x(TWO_POW_52_BITS as i64),
        );
        let biased = _mm_sub_pd(_mm_castsi128_pd(exponent), set(TWO_POW_52));
        let e = _mm_add_pd(_mm_sub_pd(biased, set(EXP_BIAS)), _mm_and_pd(big, one));
        let f = _mm_sub_pd(m, one);
        let s = _mm_div_pd(f, _mm_add_pd(set(2.0), f));
        let z = _mm_mul_pd(s, s);
        let series = estrin(
            z,
            |c| set(c),
            |a, b| _mm_add_pd(a, b),
            |a, b| _mm_mul_pd(a, b),
        );
        let two_s = _mm_mul_pd(set(2.0), s);
        let ln_m = _mm_add_pd(two_s, _mm_mul_pd(two_s, _mm_mul_pd(z, series)));
        let ln_u = _mm_add_pd(
            _mm_mul_pd(e, set(LN2_HI)),
            _mm_add_pd(_mm_mul_pd(e, set(LN2_LO)), ln_m),
        );
        _mm_storeu_pd(out.as_mut_ptr(), select(tiny, x, _mm_mul_pd(ln_u, scale)));
    }
    out
}

/// Elsewhere: two scalar calls.
#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
pub(crate) fn ln_1p_pair(x: [f64; 2]) -> [f64; 2] {
    [ln_1p(x[0]), ln_1p(x[1])]
}

#[cfg(test)]
#[path = "ln1p_tests.rs"]
mod tests;
