//! From decoded planes to RGB: chroma brought to the luma grid, YCbCr converted.

use super::frame::Component;
use super::frame::Decoder;
use super::frame::Frame;

/// 8-bit RGB pixels: ceil(w / `reduction_x`) x ceil(h / `reduction_y`), row-major, no padding.
pub(crate) struct Scaled {
    /// Width in pixels, `ceil(image width / reduction_x)`.
    pub(crate) width: u32,
    /// Height in pixels, `ceil(image height / reduction_y)`.
    pub(crate) height: u32,
    /// `width * height * 3` bytes, RGB.
    pub(crate) pixels: Vec<u8>,
}

impl Decoder<'_> {
    /// Converts the decoded planes to RGB pixels.
    pub(super) fn finish(self) -> Option<Scaled> {
        let frame = self.frame.as_ref()?;
        if !frame.comps.iter().all(|c| c.seen) {
            return None;
        }
        let ow = frame.width.div_ceil(8 / frame.per.0);
        let oh = frame.height.div_ceil(8 / frame.per.1);
        let planes = frame
            .comps
            .iter()
            .map(|c| plane(frame, c, ow, oh))
            .collect::<Option<Vec<_>>>()?;
        let n = ow.checked_mul(oh)?;
        let mut pixels = Vec::with_capacity(n.checked_mul(3)?);
        match planes.as_slice() {
            [y] => {
                for &v in y.get(..n)? {
                    pixels.extend_from_slice(&[v, v, v]);
                }
            }
            [y, cb, cr] => {
                let (y, cb, cr) = (y.get(..n)?, cb.get(..n)?, cr.get(..n)?);
                if self.is_rgb() {
                    for ((&r, &g), &b) in y.iter().zip(cb).zip(cr) {
                        pixels.extend_from_slice(&[r, g, b]);
                    }
                } else {
                    ycc_to_rgb(y, cb, cr, &mut pixels);
                }
            }
            _ => return None,
        }
        Some(Scaled {
            width: u32::try_from(ow).ok()?,
            height: u32::try_from(oh).ok()?,
            pixels,
        })
    }

    /// Whether three components hold R, G, B rather than YCbCr, as libjpeg decides it:
    /// JFIF means YCbCr, else the Adobe transform flag, else component ids `R`, `G`, `B`.
    fn is_rgb(&self) -> bool {
        if self.jfif {
            return false;
        }
        if let Some(transform) = self.adobe {
            return transform == 0;
        }
        let ids = self.frame.iter().flat_map(|f| f.comps.iter().map(|c| c.id));
        ids.eq([b'R', b'G', b'B'])
    }
}

/// One component's samples on the output grid (`ow` x `oh`): final values at 1/8
/// from the DC coefficients, then upsampled if the component is subsampled.
fn plane(frame: &Frame, c: &Component, ow: usize, oh: usize) -> Option<Vec<u8>> {
    let q0 = c.q?[0];
    let (lpx, lpy) = frame.per;
    let (px, py) = c.per;
    let full = c.h == frame.hmax && c.v == frame.vmax;
    // Full-resolution planes are cropped to the output right away.
    let (sw, sh) = if full {
        (ow, oh)
    } else {
        (c.bw * px, c.bh * py)
    };
    let mut plane = Vec::with_capacity(sw * sh);
    for row in c.coefs.chunks_exact(c.stride * px).take(sh) {
        let row = row.get(..sw)?;
        if frame.per == (1, 1) {
            plane.extend(row.iter().map(|&dc| {
                let v = ((i32::from(dc) * q0 + 4) >> 3) + 128;
                v.clamp(0, 255) as u8
            }));
        } else {
            plane.extend(row.iter().map(|&v| v as u8));
        }
    }
    if full {
        return Some(plane);
    }
    // Along an axis reduced by 4, libjpeg upsamples the very samples computed here
    // (its "fancy" filter); along one reduced by 8 they are block means.
    let filter = |up: bool, quarter: bool| match (up, quarter) {
        (false, _) => Filter::Copy,
        (true, false) => Filter::Means,
        (true, true) => Filter::Fancy,
    };
    let fx = filter(frame.hmax * lpx > c.h * px, lpx == 2);
    let fy = filter(frame.vmax * lpy > c.v * py, lpy == 2);
    upsample(&plane, sw, sh, fx, fy, ow, oh)
}

/// How `upsample` doubles the resolution along one axis.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Filter {
    /// No upsampling.
    Copy,
    /// From interval means: the left/top half of interval `i` gets
    /// `m[i] + (m[i-1] - m[i+1]) / 8` (the right/bottom half the mirror image), which
    /// is exact when the underlying signal is locally quadratic.
    Means,
    /// libjpeg's "fancy" triangle filter: 3/4 nearer sample, 1/4 further one,
    /// rounding alternately down and up.
    Fancy,
}

impl Filter {
    /// Weights in eighths of the (previous, own, next) source sample for the first
    /// of the two outputs from one sample (the second one mirrors them), and whether
    /// the first rounds down.
    pub(super) fn weights(self) -> ([i32; 3], bool) {
        match self {
            Filter::Copy => ([0, 8, 0], false),
            Filter::Means => ([1, 8, -1], false),
            Filter::Fancy => ([2, 6, 0], true),
        }
    }
}

/// Upsamples a `sw` x `sh` plane with `fx` across and `fy` down, cropped to
/// `ow` x `oh` (which must not exceed the upsampled size); edges are replicated.
pub(super) fn upsample(
    src: &[u8],
    sw: usize,
    sh: usize,
    fx: Filter,
    fy: Filter,
    ow: usize,
    oh: usize,
) -> Option<Vec<u8>> {
    if sw == 0 || sh == 0 || src.len() < sw * sh {
        return None;
    }
    // Across, into eighths (at most 10 * 255 in magnitude) plus a rounding bias
    // that makes the total 32 / 64 (16 / 64 where a fancy first output rounds down).
    let ([w0, w1, w2], down_x) = fx.weights();
    let (bias0, bias1) = if down_x { (2, 4) } else { (4, 4) };
    let mut across = Vec::with_capacity(sh.checked_mul(ow)?);
    let mut padded = Vec::with_capacity(sw + 2);
    for row in src.chunks_exact(sw).take(sh) {
        let start = across.len();
        if fx == Filter::Copy {
            across.extend(row.iter().take(ow).map(|&v| 8 * i16::from(v) + 4));
        } else {
            padded.clear();
            padded.push(*row.first()?);
            padded.extend_from_slice(row);
            padded.push(*row.last()?);
            for w in padded.windows(3) {
                let [prev, own, next] = [w[0], w[1], w[2]].map(i32::from);
                across.push((w0 * prev + w1 * own + w2 * next + bias0) as i16);
                across.push((w2 * prev + w1 * own + w0 * next + bias1) as i16);
            }
        }
        across.truncate(start + ow);
        if across.len() != start + ow {
            return None;
        }
    }
    // Down, from eighths to 64ths.
    let ([w0, w1, w2], down_y) = fy.weights();
    let mut out = Vec::with_capacity(ow * oh);
    for oy in 0..oh {
        let own = if fy == Filter::Copy { oy } else { oy / 2 }.min(sh - 1);
        let (prev, next) = (own.saturating_sub(1), (own + 1).min(sh - 1));
        let (wp, wn, bias) = if fy == Filter::Copy || oy % 2 == 0 {
            (w0, w2, if down_y { 16 } else { 0 })
        } else {
            (w2, w0, 0)
        };
        let rp = across.get(prev * ow..(prev + 1) * ow)?;
        let rm = across.get(own * ow..(own + 1) * ow)?;
        let rn = across.get(next * ow..(next + 1) * ow)?;
        out.extend(rp.iter().zip(rm).zip(rn).map(|((&vp, &vm), &vn)| {
            let acc = wp * i32::from(vp) + w1 * i32::from(vm) + wn * i32::from(vn) - bias;
            (acc >> 6).clamp(0, 255) as u8
        }));
    }
    Some(out)
}

/// libjpeg's `FIX(x)` for `SCALEBITS` = 16.
pub(super) const fn fix(x: f64) -> i32 {
    (x * 65536.0 + 0.5) as i32
}

/// Converts full-range YCbCr planes to interleaved RGB, appending to `out`, with
/// the arithmetic of libjpeg's tables (jdcolor.c).
pub(super) fn ycc_to_rgb(y: &[u8], cb: &[u8], cr: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    out.resize(start + 3 * y.len(), 0);
    let Some(dst) = out.get_mut(start..) else {
        return;
    };
    for (((px, &y), &cb), &cr) in dst.chunks_exact_mut(3).zip(y).zip(cb).zip(cr) {
        let (y, cb, cr) = (i32::from(y), i32::from(cb) - 128, i32::from(cr) - 128);
        let r = y + ((fix(1.402_00) * cr + 32768) >> 16);
        let g = y + ((-fix(0.344_14) * cb - fix(0.714_14) * cr + 32768) >> 16);
        let b = y + ((fix(1.772_00) * cb + 32768) >> 16);
        px[0] = r.clamp(0, 255) as u8;
        px[1] = g.clamp(0, 255) as u8;
        px[2] = b.clamp(0, 255) as u8;
    }
}
