//! JPEG: the marker walk ([`markers`]) and reduced-size decoding that skips most
//! of the entropy-coded data (the other modules).
//!
//! At scale 1/8 each 8x8 block of a component becomes one sample, equal to its DC
//! coefficient dequantised and descaled exactly as libjpeg's 1x1 inverse DCT does
//! (`((dc * q0 + 4) >> 3) + 128`, clamped). So the AC coefficients are never needed:
//! sequential scans skip them with one table lookup per Huffman symbol (code length
//! plus magnitude bits dropped in one shift, no value computed), and progressive AC
//! scans are not entropy-decoded at all, only jumped over to the next marker.
//!
//! Anisotropic scales, 1/8 across and 1/4 down (or the reverse), are what libjpeg's
//! 1/4 decode (its 2x2 reduced inverse DCT) gives with each horizontal (vertical)
//! pair of samples averaged: the average cancels every odd horizontal (vertical)
//! frequency, leaving a 2-point inverse DCT of the first column (row) of
//! coefficients, of which it reads frequencies 0, 1, 3, 5 and 7. Sequential scans
//! take the values of the AC symbols up to the last of those and skip the rest as
//! at 1/8. Progressive files are not handled at these scales.
//!
//! Subsampled chroma (one sample or pair per chroma block) is brought to the luma
//! grid with a triangle ("fancy") upsample, then YCbCr is converted to RGB with
//! libjpeg's fixed-point tables (ITU-R BT.601, full range).
//!
//! Anything unusual (arithmetic coding, 12-bit, lossless, hierarchical, CMYK/YCCK,
//! 2 or 4 components, sampling factors other than 1 or 2, luma not the largest
//! sampled component, corrupt or truncated entropy data, bad tables...) returns
//! `None` so that the caller can fall back to libjpeg-turbo.

// Bit and sample arithmetic on values whose ranges are established by the parser:
// the casts below are all between small non-negative integers and machine words.
#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap,
    clippy::cast_lossless,
    clippy::inline_always
)]

mod bits;
mod frame;
mod huffman;
mod idct;
pub(crate) mod markers;
mod output;
mod scan;
#[cfg(test)]
mod tests;

pub(crate) use frame::decode_scaled;
pub(crate) use output::Scaled;
