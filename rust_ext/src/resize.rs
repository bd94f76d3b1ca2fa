//! Fitting the image to the model's input size, and the transform that maps
//! model coordinates back to the original image.
//!
//! Geometry is planned in the image's displayed orientation (after EXIF
//! orientation), then carried to the stored orientation, where the resampling
//! happens; the small result is turned upright and placed on the canvas.
//!
//! Coordinates are continuous: pixel `i` covers `[i, i + 1)`, so pixel
//! centres sit at `i + 0.5`, on both sides of the transform.

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};

use crate::error::Error;
use crate::image::{Reduction, RgbImage};
use crate::orientation::Orientation;

/// Slack, in model pixels, for rounding the placed image's edges to whole pixels.
const EDGE_EPSILON: f64 = 1e-6;

/// How the image is fitted to the output size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResizeMode {
    /// Scale each axis independently to fill the output exactly (aspect ratio not kept).
    Stretch,
    /// Scale uniformly to fit inside the output, centred, the rest padded.
    Letterbox,
    /// Scale uniformly to cover the output, cropping the overflow equally on both sides.
    Crop,
    /// Scale so the shorter side is `shorter_side`, then take the centre (ImageNet style).
    ShorterCrop {
        /// The shorter side after scaling; at least the output's larger side.
        shorter_side: u32,
    },
    /// Scale uniformly so the longer side is at most the target's width (the
    /// `max_side`), no padding: the output has the image's own aspect, and so
    /// its own size ([`Target::for_image`]). Never enlarged unless `upscale`.
    Fit {
        /// Enlarge images smaller than `max_side` too.
        upscale: bool,
    },
}

/// The resampling filter; all are antialiased (widened when downscaling), as Pillow's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Filter {
    /// Triangle kernel, Pillow's `BILINEAR` (the default).
    #[default]
    Bilinear,
    /// Box kernel: the average of the covered area, Pillow's `BOX`, OpenCV's `INTER_AREA`.
    Area,
    /// Lanczos, three lobes, Pillow's `LANCZOS`.
    Lanczos,
}

impl Filter {
    fn algorithm(self) -> ResizeAlg {
        ResizeAlg::Convolution(match self {
            Self::Bilinear => FilterType::Bilinear,
            Self::Area => FilterType::Box,
            Self::Lanczos => FilterType::Lanczos3,
        })
    }
}

/// The output size and how the image is fitted to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    /// Output width in pixels (at least 1).
    pub width: u32,
    /// Output height in pixels (at least 1).
    pub height: u32,
    /// How the image is fitted.
    pub mode: ResizeMode,
    /// The resampling filter.
    pub filter: Filter,
    /// Every channel of the letterbox padding.
    pub pad_value: u8,
}

impl Target {
    /// The concrete target for an image of `width x height` displayed pixels:
    /// for [`ResizeMode::Fit`], a stretch to the fitted size (aspect kept up
    /// to rounding, each side at least 1); any other mode is its own target.
    #[must_use]
    pub fn for_image(&self, width: u32, height: u32) -> Self {
        let ResizeMode::Fit { upscale } = self.mode else {
            return *self;
        };
        let max_side = self.width.max(1);
        let longer = width.max(height).max(1);
        let mut scale = f64::from(max_side) / f64::from(longer);
        if !upscale {
            scale = scale.min(1.0);
        }
        let side = |extent: u32| {
            let scaled = (f64::from(extent) * scale)
                .round()
                .clamp(1.0, f64::from(max_side));
            // In 1..=max_side, so the cast is exact.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let pixels = scaled as u32;
            pixels
        };
        Self {
            width: side(width),
            height: side(height),
            mode: ResizeMode::Stretch,
            ..*self
        }
    }
}

/// Maps model-input coordinates to original-image coordinates (as displayed):
/// `x_orig = (x_model - pad_x) / scale_x`, likewise for y. Crop modes have
/// negative padding.
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

/// The transform plus the output rectangle and source region that realise it,
/// all in displayed orientation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Plan {
    /// Model coordinates to displayed-image coordinates.
    pub transform: Transform,
    x: Span,
    y: Span,
}

/// The source rectangle to resample, in stored orientation and stored pixels,
/// and the size it becomes (still in stored orientation).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Region {
    /// Left edge.
    pub x: f64,
    /// Top edge.
    pub y: f64,
    /// Width (positive).
    pub width: f64,
    /// Height (positive).
    pub height: f64,
    /// Resampled width in pixels.
    pub out_width: u32,
    /// Resampled height in pixels.
    pub out_height: u32,
}

impl Region {
    /// Per axis, the largest `d` of `1, 2, 4, 8` such that the region, shrunk
    /// `d` times, still has at least as many pixels as its output: the DCT
    /// scaling a JPEG decoder may apply without losing detail (as Pillow's
    /// `draft`, which takes the smaller of the two for both axes).
    #[must_use]
    pub fn reduction(&self) -> Reduction {
        let axis = |extent: f64, out: u32| {
            [8, 4, 2]
                .into_iter()
                .find(|&d| extent / f64::from(d) >= f64::from(out))
                .unwrap_or(1)
        };
        Reduction {
            x: axis(self.width, self.out_width),
            y: axis(self.height, self.out_height),
        }
    }
}

impl Plan {
    /// The source rectangle in the stored image of `width x height` stored
    /// pixels that `orientation` turns upright.
    #[must_use]
    pub fn region(&self, orientation: Orientation, width: u32, height: u32) -> Region {
        let (x, y) = (self.x, self.y);
        let (x0, x1) = (x.src_start, x.src_start + x.src_len);
        let (y0, y1) = (y.src_start, y.src_start + y.src_len);
        // Displayed size: the stored one, transposed for the quarter turns.
        let (dw, dh) = orientation.displayed(f64::from(width), f64::from(height));
        let flip = |a0: f64, a1: f64, extent: f64| (extent - a1, extent - a0);
        let ((rx0, rx1), (ry0, ry1)) = match orientation {
            Orientation::Identity => ((x0, x1), (y0, y1)),
            Orientation::FlipH => (flip(x0, x1, dw), (y0, y1)),
            Orientation::Rotate180 => (flip(x0, x1, dw), flip(y0, y1, dh)),
            Orientation::FlipV => ((x0, x1), flip(y0, y1, dh)),
            Orientation::Transpose => ((y0, y1), (x0, x1)),
            Orientation::Rotate90 => ((y0, y1), flip(x0, x1, dw)),
            Orientation::Transverse => (flip(y0, y1, dh), flip(x0, x1, dw)),
            Orientation::Rotate270 => (flip(y0, y1, dh), (x0, x1)),
        };
        let (out_width, out_height) = if orientation.transposes() {
            (y.dst_len, x.dst_len)
        } else {
            (x.dst_len, y.dst_len)
        };
        Region {
            x: rx0,
            y: ry0,
            width: rx1 - rx0,
            height: ry1 - ry0,
            out_width,
            out_height,
        }
    }
}

/// Resamples `region` of `image` and places it, upright, on a canvas of
/// `target`'s size filled with the pad value: packed RGB8, row-major.
///
/// `image` may be the stored image shrunk by `reduction` (a JPEG decoder's
/// DCT scaling); `region` is in full-size stored pixels.
///
/// # Errors
///
/// [`Error::Internal`] if the output size overflows or the resizer fails.
pub fn render(
    image: &RgbImage,
    reduction: Reduction,
    region: &Region,
    plan: &Plan,
    orientation: Orientation,
    target: &Target,
) -> Result<Vec<u8>, Error> {
    let mut canvas = vec![target.pad_value; pixel_bytes(target.width, target.height)?];
    let (scale_x, scale_y) = (f64::from(reduction.x.max(1)), f64::from(reduction.y.max(1)));
    let (img_w, img_h) = (f64::from(image.width), f64::from(image.height));
    let left = (region.x / scale_x).clamp(0.0, img_w);
    let top = (region.y / scale_y).clamp(0.0, img_h);
    let width = (region.width / scale_x).min(img_w - left);
    let height = (region.height / scale_y).min(img_h - top);

    let mut resampled = vec![0; pixel_bytes(region.out_width, region.out_height)?];
    let src = ImageRef::new(image.width, image.height, &image.pixels, PixelType::U8x3)
        .map_err(Error::internal)?;
    let mut dst = Image::from_slice_u8(
        region.out_width,
        region.out_height,
        &mut resampled,
        PixelType::U8x3,
    )
    .map_err(Error::internal)?;
    let options = ResizeOptions::new()
        .resize_alg(target.filter.algorithm())
        .crop(left, top, width, height);
    Resizer::new()
        .resize(&src, &mut dst, &options)
        .map_err(Error::internal)?;

    orientation.blit(
        &resampled,
        region.out_width as usize,
        region.out_height as usize,
        &mut canvas,
        target.width as usize,
        (plan.x.dst_start as usize, plan.y.dst_start as usize),
    );
    Ok(canvas)
}

/// `width * height * 3`, checked.
fn pixel_bytes(width: u32, height: u32) -> Result<usize, Error> {
    usize::try_from(u64::from(width) * u64::from(height) * 3)
        .map_err(|_| Error::Internal("output size overflows".into()))
}

/// The geometry of fitting a `width x height` image (as displayed) to `target`.
///
/// # Errors
///
/// [`Error::InvalidArgument`] for a zero size, or a shorter side smaller than
/// the output for [`ResizeMode::ShorterCrop`].
pub fn plan(width: u32, height: u32, target: &Target) -> Result<Plan, Error> {
    if target.width == 0 || target.height == 0 {
        return Err(Error::InvalidArgument(format!(
            "output size {}x{} has a zero side",
            target.width, target.height
        )));
    }
    if width == 0 || height == 0 {
        return Err(Error::InvalidArgument("image has a zero side".into()));
    }
    if let ResizeMode::Fit { .. } = target.mode {
        return plan(width, height, &target.for_image(width, height));
    }
    let (src_w, src_h) = (f64::from(width), f64::from(height));
    let (dst_w, dst_h) = (f64::from(target.width), f64::from(target.height));
    let (scale_x, scale_y) = (dst_w / src_w, dst_h / src_h);
    Ok(match target.mode {
        // Fit became a stretch to its own size above.
        ResizeMode::Stretch | ResizeMode::Fit { .. } => Plan {
            transform: Transform {
                scale_x,
                scale_y,
                pad_x: 0.0,
                pad_y: 0.0,
            },
            x: whole(width, target.width),
            y: whole(height, target.height),
        },
        ResizeMode::Letterbox | ResizeMode::Crop | ResizeMode::ShorterCrop { .. } => {
            let scale = match target.mode {
                ResizeMode::Letterbox => scale_x.min(scale_y),
                ResizeMode::ShorterCrop { shorter_side } => {
                    if shorter_side < target.width.max(target.height) {
                        return Err(Error::InvalidArgument(format!(
                            "shorter side {shorter_side} is smaller than the output {}x{}",
                            target.width, target.height
                        )));
                    }
                    f64::from(shorter_side) / src_w.min(src_h)
                }
                _ => scale_x.max(scale_y),
            };
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
/// `x_orig = (x_model - pad) / scale` stays exact everywhere. When the scaled
/// image overflows `dst` (the crop modes) the padding is negative and the
/// source region is the centre that fits.
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

    use proptest::prelude::*;

    fn letterbox() -> ResizeMode {
        ResizeMode::Letterbox
    }

    fn target(width: u32, height: u32, mode: ResizeMode) -> Target {
        Target {
            width,
            height,
            mode,
            filter: Filter::Bilinear,
            pad_value: 114,
        }
    }

    #[test]
    fn fit_keeps_the_aspect_and_never_enlarges_unless_asked() {
        let fit = |upscale| target(1024, 1024, ResizeMode::Fit { upscale });
        let sized = |t: Target| (t.width, t.height, t.mode);
        let stretch = ResizeMode::Stretch;
        assert_eq!(
            sized(fit(false).for_image(4000, 3000)),
            (1024, 768, stretch)
        );
        assert_eq!(sized(fit(false).for_image(900, 200)), (900, 200, stretch));
        assert_eq!(sized(fit(true).for_image(512, 100)), (1024, 200, stretch));
        assert_eq!(sized(fit(false).for_image(100_000, 3)), (1024, 1, stretch));
        let plan = plan(3000, 2000, &fit(false)).unwrap();
        assert_eq!(plan.transform.scale_x, 1024.0 / 3000.0);
        assert_eq!(plan.transform.scale_y, 683.0 / 2000.0);
        assert_eq!((plan.transform.pad_x, plan.transform.pad_y), (0.0, 0.0));
    }

    /// Plan, region and render for an upright image.
    fn resize(image: &RgbImage, target: &Target) -> Result<(Vec<u8>, Transform), Error> {
        let plan = plan(image.width, image.height, target)?;
        let region = plan.region(Orientation::Identity, image.width, image.height);
        let canvas = render(
            image,
            Reduction::NONE,
            &region,
            &plan,
            Orientation::Identity,
            target,
        )?;
        Ok((canvas, plan.transform))
    }

    #[test]
    fn crop_keeps_the_centre() {
        let plan = plan(400, 200, &target(100, 100, ResizeMode::Crop)).unwrap();
        let t = plan.transform;
        assert_eq!(
            (t.scale_x, t.scale_y, t.pad_x, t.pad_y),
            (0.5, 0.5, -50.0, 0.0)
        );
        assert_eq!(t.to_original(0.0, 0.0), (100.0, 0.0));
        assert_eq!(t.to_original(100.0, 100.0), (300.0, 200.0));
        let region = plan.region(Orientation::Identity, 400, 200);
        assert_eq!(
            (region.x, region.y, region.width, region.height),
            (100.0, 0.0, 200.0, 200.0)
        );
    }

    #[test]
    fn shorter_side_then_centre_crop() {
        let mode = ResizeMode::ShorterCrop { shorter_side: 256 };
        let plan = plan(512, 1024, &target(224, 224, mode)).unwrap();
        let t = plan.transform;
        assert_eq!((t.scale_x, t.scale_y), (0.5, 0.5));
        // 256x512 after scaling; the centre 224x224 starts at (16, 144).
        assert_eq!((t.pad_x, t.pad_y), (-16.0, -144.0));
        let too_small = ResizeMode::ShorterCrop { shorter_side: 200 };
        assert!(matches!(
            super::plan(512, 1024, &target(224, 224, too_small)),
            Err(Error::InvalidArgument(_))
        ));
    }

    #[test]
    fn regions_follow_the_orientation() {
        // Displayed 200x400 (stored 400x200, turned 90 degrees clockwise),
        // cropped to its top half's centre square... of a 100x100 output.
        let plan = plan(200, 400, &target(100, 100, ResizeMode::Crop)).unwrap();
        let upright = plan.region(Orientation::Identity, 200, 400);
        assert_eq!(
            (upright.x, upright.y, upright.width, upright.height),
            (0.0, 100.0, 200.0, 200.0)
        );
        let turned = plan.region(Orientation::Rotate90, 400, 200);
        assert_eq!(
            (turned.x, turned.y, turned.width, turned.height),
            (100.0, 0.0, 200.0, 200.0)
        );
        // Stretch to 50x100 displayed: the stored region is resampled to 100x50.
        let stretch = super::plan(200, 400, &target(50, 100, ResizeMode::Stretch)).unwrap();
        let region = stretch.region(Orientation::Rotate270, 400, 200);
        assert_eq!((region.out_width, region.out_height), (100, 50));
    }

    #[test]
    fn reduction_keeps_enough_pixels() {
        let region = |w: f64, h: f64, out_w: u32, out_h: u32| Region {
            x: 0.0,
            y: 0.0,
            width: w,
            height: h,
            out_width: out_w,
            out_height: out_h,
        };
        let r = |x, y| Reduction { x, y };
        assert_eq!(region(4000.0, 3000.0, 320, 320).reduction(), r(8, 8));
        assert_eq!(region(1920.0, 1080.0, 224, 224).reduction(), r(8, 4));
        assert_eq!(region(640.0, 480.0, 320, 240).reduction(), r(2, 2));
        assert_eq!(region(640.0, 480.0, 321, 240).reduction(), r(1, 2));
        assert_eq!(region(100.0, 100.0, 320, 320).reduction(), r(1, 1));
    }

    proptest! {
        /// For any sizes and mode, the source region lies inside the image and
        /// the transform maps the drawn output edges onto the region's edges.
        #[test]
        fn plans_stay_inside_and_agree(
            width in 1u32..5000, height in 1u32..5000,
            out_w in 1u32..700, out_h in 1u32..700,
            mode in 0usize..4, exif in 1u8..=8,
        ) {
            let mode = [
                ResizeMode::Stretch,
                ResizeMode::Letterbox,
                ResizeMode::Crop,
                ResizeMode::ShorterCrop { shorter_side: out_w.max(out_h) + 10 },
            ][mode];
            let orientation = Orientation::from_exif(exif);
            let (dw, dh) = orientation.displayed(width, height);
            let plan = plan(dw, dh, &target(out_w, out_h, mode)).unwrap();
            let region = plan.region(orientation, width, height);
            let slack = 1e-6;
            prop_assert!(region.x >= -slack && region.y >= -slack);
            prop_assert!(region.x + region.width <= f64::from(width) + slack);
            prop_assert!(region.y + region.height <= f64::from(height) + slack);
            prop_assert!(region.out_width >= 1 && region.out_height >= 1);
            let (x, y) = (plan.x, plan.y);
            prop_assert!(x.dst_start + x.dst_len <= out_w && y.dst_start + y.dst_len <= out_h);
            if x.dst_len > 1 && y.dst_len > 1 {
                let (x0, y0) = plan.transform.to_original(f64::from(x.dst_start), f64::from(y.dst_start));
                prop_assert!((x0 - x.src_start).abs() < 1e-6 * f64::from(dw).max(1.0));
                prop_assert!((y0 - y.src_start).abs() < 1e-6 * f64::from(dh).max(1.0));
            }
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
