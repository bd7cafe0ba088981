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
    let mut series = INV_ODD[9];
    for &c in INV_ODD[..9].iter().rev() {
        series = series * z + c;
    }
    let ln_m = 2.0 * s + 2.0 * s * (z * series);
    e * LN2_HI + (e * LN2_LO + ln_m)
}

#[cfg(test)]
#[path = "ln1p_tests.rs"]
mod tests;
