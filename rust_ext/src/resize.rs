//! Resizing to the model's input size, and the transform that maps model
//! coordinates back to the original image.
//!
//! Coordinates are continuous: pixel `i` covers `[i, i + 1)`, so pixel
//! centres sit at `i + 0.5`, on both sides of the transform.

use fast_image_resize::images::{CroppedImageMut, Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};

use crate::decode::RgbImage;
use crate::error::Error;

/// Antialiased bilinear (a triangle kernel widened by the downscale factor), as Pillow's `BILINEAR`.
const ALGORITHM: ResizeAlg = ResizeAlg::Convolution(FilterType::Bilinear);

/// Slack, in model pixels, for rounding the placed image's edges to whole pixels.
const EDGE_EPSILON: f64 = 1e-6;

/// How the image is fitted to the output size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResizeMode {
    /// Scale each axis independently to fill the output exactly (aspect ratio not kept).
    Stretch,
    /// Scale uniformly to fit inside the output, centred, the rest filled with `pad_value`.
    Letterbox {
        /// The value of every channel of the padding (default 0, black).
        pad_value: u8,
    },
}

/// The output size and fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    /// Output width in pixels (at least 1).
    pub width: u32,
    /// Output height in pixels (at least 1).
    pub height: u32,
    /// How the image is fitted.
    pub mode: ResizeMode,
}

/// Maps model-input coordinates to original-image coordinates:
/// `x_orig = (x_model - pad_x) / scale_x`, likewise for y.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Transform {
    /// Model pixels per original pixel, horizontally.
    pub scale_x: f64,
    /// Model pixels per original pixel, vertically.
    pub scale_y: f64,
    /// Model pixels left of where original x = 0 lands.
    pub pad_x: f64,
    /// Model pixels above where original y = 0 lands.
    pub pad_y: f64,
}

impl Transform {
    /// Maps a model-input point to the original image.
    #[must_use]
    pub fn to_original(&self, x: f64, y: f64) -> (f64, f64) {
        (
            (x - self.pad_x) / self.scale_x,
            (y - self.pad_y) / self.scale_y,
        )
    }
}

/// Where the scaled image is drawn along one axis.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Span {
    /// First output pixel drawn.
    dst_start: u32,
    /// Output pixels drawn (at least 1).
    dst_len: u32,
    /// Source coordinate that lands on `dst_start`'s leading edge.
    src_start: f64,
    /// Source extent that covers the `dst_len` pixels.
    src_len: f64,
}

/// The transform plus the output rectangle and source region that realise it.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Plan {
    transform: Transform,
    x: Span,
    y: Span,
}

/// Resizes `image` to `target`, returning packed RGB8 of `target.height x target.width`.
///
/// # Errors
///
/// [`Error::InvalidArgument`] for a zero target size or an empty image;
/// [`Error::Internal`] if the output size overflows or the resizer fails.
pub fn resize(image: &RgbImage, target: &Target) -> Result<(Vec<u8>, Transform), Error> {
    let plan = plan(image.width, image.height, target)?;
    let len = usize::try_from(target.width)
        .ok()
        .zip(usize::try_from(target.height).ok())
        .and_then(|(w, h)| w.checked_mul(h))
        .and_then(|n| n.checked_mul(3))
        .ok_or_else(|| Error::Internal("output size overflows".into()))?;
    let fill = match target.mode {
        ResizeMode::Stretch => 0,
        ResizeMode::Letterbox { pad_value } => pad_value,
    };
    let mut out = vec![fill; len];

    let src = ImageRef::new(image.width, image.height, &image.pixels, PixelType::U8x3)
        .map_err(Error::internal)?;
    let mut dst = Image::from_slice_u8(target.width, target.height, &mut out, PixelType::U8x3)
        .map_err(Error::internal)?;
    let (x, y) = (plan.x, plan.y);
    let mut region = CroppedImageMut::new(&mut dst, x.dst_start, y.dst_start, x.dst_len, y.dst_len)
        .map_err(Error::internal)?;
    let options = ResizeOptions::new().resize_alg(ALGORITHM).crop(
        x.src_start,
        y.src_start,
        x.src_len,
        y.src_len,
    );
    Resizer::new()
        .resize(&src, &mut region, &options)
        .map_err(Error::internal)?;
    Ok((out, plan.transform))
}

/// The geometry of fitting a `width x height` image to `target`.
fn plan(width: u32, height: u32, target: &Target) -> Result<Plan, Error> {
    if target.width == 0 || target.height == 0 {
        return Err(Error::InvalidArgument(format!(
            "output size {}x{} has a zero side",
            target.width, target.height
        )));
    }
    if width == 0 || height == 0 {
        return Err(Error::InvalidArgument("image has a zero side".into()));
    }
    let (src_w, src_h) = (f64::from(width), f64::from(height));
    let (dst_w, dst_h) = (f64::from(target.width), f64::from(target.height));
    let (scale_x, scale_y) = (dst_w / src_w, dst_h / src_h);
    Ok(match target.mode {
        ResizeMode::Stretch => Plan {
            transform: Transform {
                scale_x,
                scale_y,
                pad_x: 0.0,
                pad_y: 0.0,
            },
            x: whole(width, target.width),
            y: whole(height, target.height),
        },
        ResizeMode::Letterbox { .. } => {
            let scale = scale_x.min(scale_y);
            let (pad_x, x) = centre(width, target.width, scale);
            let (pad_y, y) = centre(height, target.height, scale);
            Plan {
                transform: Transform {
                    scale_x: scale,
                    scale_y: scale,
                    pad_x,
                    pad_y,
                },
                x,
                y,
            }
        }
    })
}

/// The whole source axis onto the whole output axis.
fn whole(src: u32, dst: u32) -> Span {
    Span {
        dst_start: 0,
        dst_len: dst,
        src_start: 0.0,
        src_len: f64::from(src),
    }
}

/// Centres `src` pixels scaled by `scale` in `dst` pixels; returns the exact
/// (fractional) padding and the whole output pixels the image covers.
///
/// Output pixels only partly covered at the two edges keep the padding, and
/// the source region is cropped by the matching fraction, so the mapping
/// `x_orig = (x_model - pad) / scale` stays exact everywhere.
fn centre(src: u32, dst: u32, scale: f64) -> (f64, Span) {
    let (src_f, dst_f) = (f64::from(src), f64::from(dst));
    let extent = src_f * scale;
    let mut pad = (dst_f - extent) / 2.0;
    if pad.abs() < EDGE_EPSILON {
        // This is the axis that fits exactly; don't report rounding noise.
        pad = 0.0;
    }
    let start = (pad - EDGE_EPSILON).ceil().max(0.0);
    let end = (pad + extent + EDGE_EPSILON).floor().min(dst_f);
    if end - start >= 1.0 {
        let src_start = ((start - pad) / scale).clamp(0.0, src_f);
        let src_len = ((end - start) / scale).min(src_f - src_start);
        let span = Span {
            dst_start: to_pixel(start, dst),
            dst_len: to_pixel(end - start, dst),
            src_start,
            src_len,
        };
        return (pad, span);
    }
    // Thinner than one output pixel (e.g. a 10000x1 strip): draw it as one
    // whole pixel so it does not vanish; the mapping is off by under a pixel.
    let start = to_pixel(pad.floor(), dst.saturating_sub(1));
    let span = Span {
        dst_start: start,
        dst_len: 1,
        src_start: 0.0,
        src_len: src_f,
    };
    (pad, span)
}

/// A non-negative whole number of pixels as `u32`, clamped to `0..=max`.
#[allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "clamped to 0..=max first, and callers pass whole numbers"
)]
fn to_pixel(value: f64, max: u32) -> u32 {
    value.clamp(0.0, f64::from(max)) as u32
}

#[cfg(test)]
#[allow(
    clippy::float_cmp,
    reason = "the compared values are exact by construction"
)]
mod tests {
    use super::*;

    fn letterbox() -> ResizeMode {
        ResizeMode::Letterbox { pad_value: 114 }
    }

    fn target(width: u32, height: u32, mode: ResizeMode) -> Target {
        Target {
            width,
            height,
            mode,
        }
    }

    #[test]
    fn stretch_scales_each_axis() {
        let plan = plan(1000, 500, &target(320, 320, ResizeMode::Stretch)).unwrap();
        assert_eq!(
            plan.transform,
            Transform {
                scale_x: 0.32,
                scale_y: 0.64,
                pad_x: 0.0,
                pad_y: 0.0
            }
        );
        assert_eq!(plan.transform.to_original(320.0, 320.0), (1000.0, 500.0));
        assert_eq!((plan.x.dst_len, plan.y.dst_len), (320, 320));
    }

    #[test]
    fn letterbox_wide_image_pads_top_and_bottom() {
        let plan = plan(1000, 500, &target(320, 320, letterbox())).unwrap();
        let t = plan.transform;
        assert_eq!((t.scale_x, t.scale_y), (0.32, 0.32));
        assert_eq!((t.pad_x, t.pad_y), (0.0, 80.0));
        assert_eq!((plan.y.dst_start, plan.y.dst_len), (80, 160));
        assert_eq!((plan.x.dst_start, plan.x.dst_len), (0, 320));
        assert_eq!(t.to_original(0.0, 80.0), (0.0, 0.0));
        assert_eq!(t.to_original(320.0, 240.0), (1000.0, 500.0));
    }

    #[test]
    fn letterbox_tall_image_pads_left_and_right() {
        let plan = plan(300, 600, &target(320, 320, letterbox())).unwrap();
        let t = plan.transform;
        assert!((t.scale_x - 320.0 / 600.0).abs() < 1e-15);
        assert_eq!(t.pad_y, 0.0);
        assert!((t.pad_x - 80.0).abs() < 1e-9);
        assert_eq!((plan.x.dst_start, plan.x.dst_len), (80, 160));
    }

    #[test]
    fn letterbox_fractional_padding_is_exact() {
        // 1000x333 -> 320x320: the image spans y in [106.72, 213.28).
        let plan = plan(1000, 333, &target(320, 320, letterbox())).unwrap();
        let t = plan.transform;
        assert!((t.pad_y - 106.72).abs() < 1e-9);
        assert_eq!((plan.y.dst_start, plan.y.dst_len), (107, 106));
        // The first drawn row's top edge maps to where the source crop starts.
        let (_, y0) = t.to_original(0.0, 107.0);
        assert!((y0 - plan.y.src_start).abs() < 1e-9);
        let (_, y1) = t.to_original(0.0, 213.0);
        assert!((y1 - (plan.y.src_start + plan.y.src_len)).abs() < 1e-9);
        assert!(plan.y.src_start + plan.y.src_len <= 333.0);
    }

    #[test]
    fn letterbox_upscales_small_images() {
        let plan = plan(28, 20, &target(320, 320, letterbox())).unwrap();
        let t = plan.transform;
        assert!((t.scale_x - 320.0 / 28.0).abs() < 1e-12);
        assert_eq!(t.pad_x, 0.0);
        let (x, y) = t.to_original(320.0, 320.0 - t.pad_y);
        assert!((x - 28.0).abs() < 1e-9 && (y - 20.0).abs() < 1e-9);
    }

    #[test]
    fn letterbox_sliver_keeps_one_pixel() {
        let plan = plan(10_000, 1, &target(320, 320, letterbox())).unwrap();
        assert_eq!((plan.y.dst_start, plan.y.dst_len), (159, 1));
        assert_eq!(plan.y.src_len, 1.0);
    }

    #[test]
    fn letterbox_same_aspect_has_no_padding() {
        let plan = plan(640, 480, &target(320, 240, letterbox())).unwrap();
        let t = plan.transform;
        assert_eq!((t.pad_x, t.pad_y), (0.0, 0.0));
        assert_eq!((plan.x, plan.y), (whole(640, 320), whole(480, 240)));
    }

    #[test]
    fn zero_sizes_are_rejected() {
        assert!(matches!(
            plan(10, 10, &target(0, 10, ResizeMode::Stretch)),
            Err(Error::InvalidArgument(_))
        ));
        assert!(matches!(
            plan(0, 10, &target(10, 10, letterbox())),
            Err(Error::InvalidArgument(_))
        ));
    }

    fn solid(width: u32, height: u32, rgb: [u8; 3]) -> RgbImage {
        let pixels = rgb
            .iter()
            .copied()
            .cycle()
            .take(width as usize * height as usize * 3)
            .collect();
        RgbImage {
            width,
            height,
            pixels,
        }
    }

    #[test]
    fn resize_fills_padding_and_keeps_colour() {
        let image = solid(200, 100, [10, 200, 30]);
        let (out, t) = resize(&image, &target(64, 64, letterbox())).unwrap();
        assert_eq!(out.len(), 64 * 64 * 3);
        assert_eq!(t.pad_y, 16.0);
        let px = |x: usize, y: usize| &out[(y * 64 + x) * 3..(y * 64 + x) * 3 + 3];
        assert_eq!(px(0, 0), [114, 114, 114]);
        assert_eq!(px(63, 15), [114, 114, 114]);
        assert_eq!(px(0, 16), [10, 200, 30]);
        assert_eq!(px(63, 47), [10, 200, 30]);
        assert_eq!(px(32, 48), [114, 114, 114]);
    }

    #[test]
    fn resize_stretch_covers_everything() {
        let image = solid(7, 3, [1, 2, 3]);
        let (out, _) = resize(&image, &target(50, 40, ResizeMode::Stretch)).unwrap();
        assert!(out.chunks(3).all(|p| p == [1, 2, 3]));
    }
}
