//! The reduced inverse DCTs: 1, 2 or 4 samples per block from a few dequantised
//! coefficients, rounded as libjpeg-turbo does.

/// A final sample from a value scaled by `2^shift`, rounded, re-centred, clamped.
pub(super) fn sample(v: i32, shift: u32) -> i16 {
    ((v.wrapping_add(1 << (shift - 1)) >> shift) + 128).clamp(0, 255) as i16
}

/// The 2-point 1-D inverse DCT of libjpeg's `jpeg_idct_2x2` (jidctred.c) with
/// both passes' scaling: dequantised frequency 0 and frequencies 1, 3, 5, 7 to two
/// samples. Inputs are within 16 bits: only the final sums can overflow (and
/// wrap, as in libjpeg-turbo's SSE2 code).
pub(super) fn idct2(x0: i32, [x1, x3, x5, x7]: [i32; 4]) -> [i16; 2] {
    let even = x0 << 15;
    let odd = x1 * 29692 - x3 * 10426 + x5 * 6967 - x7 * 5906;
    [
        sample(even.wrapping_add(odd), 18),
        sample(even.wrapping_sub(odd), 18),
    ]
}

/// The 4-point 1-D inverse DCT of libjpeg's `jpeg_idct_4x4` (jidctred.c) with
/// both passes' scaling: dequantised frequency 0 and frequencies 1, 2, 3, 5, 6, 7
/// to four samples. Inputs are within 16 bits: only the final sums can overflow.
pub(super) fn idct4(x0: i32, [x1, x2, x3, x5, x6, x7]: [i32; 6]) -> [i16; 4] {
    let even = x0 << 14;
    let t2 = x2 * 15137 - x6 * 6270;
    let (t10, t12) = (even + t2, even - t2);
    let t0 = -x7 * 1730 + x5 * 11893 - x3 * 17799 + x1 * 8697;
    let t2 = -x7 * 4176 - x5 * 4926 + x3 * 7373 + x1 * 20995;
    [
        sample(t10.wrapping_add(t2), 17),
        sample(t12.wrapping_add(t0), 17),
        sample(t12.wrapping_sub(t0), 17),
        sample(t10.wrapping_sub(t2), 17),
    ]
}
