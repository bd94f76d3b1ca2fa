//! The whole pipeline: encoded bytes to model-input tensors (one image or a
//! batch written into one buffer), and header-only probing.

use crate::decode::{read_checked_header, Source};
use crate::error::Error;
use crate::image::{Header, Reduction, RgbImage};
use crate::limits::Limits;
use crate::orientation::Orientation;
use crate::resize::{plan, render, Target, Transform};
use crate::tensor::{Output, Slot, TensorData};

/// Everything that turns an image into a model input.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spec {
    /// Output size, fit, filter and pad value.
    pub target: Target,
    /// Alpha is flattened onto this RGB colour.
    pub background: [u8; 3],
    /// Channels, layout, element type and normalization.
    pub output: Output,
}

impl Spec {
    /// Elements per image.
    #[must_use]
    pub fn elements(&self) -> usize {
        self.output
            .len(self.target.width as usize, self.target.height as usize)
    }
}

/// What became of one image: its header, orientation and transform.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Placed {
    /// Format and stored size, from the header.
    pub header: Header,
    /// EXIF orientation applied.
    pub orientation: Orientation,
    /// Maps tensor coordinates back to the image as displayed.
    pub transform: Transform,
}

impl Placed {
    /// The size as displayed: `(width, height)` after orientation.
    #[must_use]
    pub fn displayed_size(&self) -> (u32, u32) {
        self.orientation
            .displayed(self.header.width, self.header.height)
    }
}

/// An image decoded at full size and turned upright.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upright {
    /// Format and stored size, from the header.
    pub header: Header,
    /// EXIF orientation applied.
    pub orientation: Orientation,
    /// The pixels as displayed: the frame a [`Placed::transform`] maps into.
    pub image: RgbImage,
}

/// Decodes `data` at full size (no DCT scaling, no resampling) and turns it
/// upright, alpha flattened onto `background`: the picture to draw results on.
///
/// # Errors
///
/// Any [`Error`]: limits are checked from the header before decoding.
pub fn decode_upright(data: &[u8], limits: &Limits, background: [u8; 3]) -> Result<Upright, Error> {
    let source = Source::open(data, limits)?;
    let (header, orientation) = (source.header, source.orientation);
    let (stored, _) = source.decode(Reduction::NONE, background)?;
    let image = if orientation == Orientation::Identity {
        stored
    } else {
        let (width, height) = orientation.displayed(stored.width, stored.height);
        let mut pixels = vec![0; stored.pixels.len()];
        orientation.blit(
            &stored.pixels,
            stored.width as usize,
            stored.height as usize,
            &mut pixels,
            width as usize,
            (0, 0),
        );
        RgbImage {
            width,
            height,
            pixels,
        }
    };
    Ok(Upright {
        header,
        orientation,
        image,
    })
}

/// Decodes `data` and writes it into `slot` as `spec` says.
///
/// # Errors
///
/// Any [`Error`]: limits are checked from the header before decoding.
pub fn preprocess_into(
    data: &[u8],
    spec: &Spec,
    limits: &Limits,
    slot: &mut Slot<'_>,
) -> Result<Placed, Error> {
    let source = Source::open(data, limits)?;
    let (width, height) = source
        .orientation
        .displayed(source.header.width, source.header.height);
    let target = spec.target.for_image(width, height);
    if target != spec.target {
        return Err(Error::InvalidArgument(
            "resize fit gives each image its own size: decode it with preprocess_one".into(),
        ));
    }
    place(source, spec, slot)
}

/// One image decoded into a tensor of its own: the size `spec` gives it (for
/// [`ResizeMode::Fit`](crate::ResizeMode::Fit), the image's fitted size).
///
/// Returns the data, its `(width, height)` and the placement.
///
/// # Errors
///
/// Any [`Error`]: limits are checked from the header before decoding.
pub fn preprocess_one(
    data: &[u8],
    spec: &Spec,
    limits: &Limits,
) -> Result<(TensorData, (u32, u32), Placed), Error> {
    let source = Source::open(data, limits)?;
    let (width, height) = source
        .orientation
        .displayed(source.header.width, source.header.height);
    let concrete = Spec {
        target: spec.target.for_image(width, height),
        ..*spec
    };
    let mut tensor = TensorData::zeros(spec.output.dtype, concrete.elements());
    let mut slot = tensor.whole();
    let placed = place(source, &concrete, &mut slot)?;
    Ok((
        tensor,
        (concrete.target.width, concrete.target.height),
        placed,
    ))
}

/// Decodes the opened image and writes it into `slot` at `spec`'s concrete size.
fn place(source: Source<'_>, spec: &Spec, slot: &mut Slot<'_>) -> Result<Placed, Error> {
    let (header, orientation) = (source.header, source.orientation);
    let (width, height) = orientation.displayed(header.width, header.height);
    let target = &spec.target;
    let plan = plan(width, height, target)?;
    let region = plan.region(orientation, header.width, header.height);
    let (image, reduction) = source.decode(region.reduction(), spec.background)?;
    let canvas = render(&image, reduction, &region, &plan, orientation, target)?;
    drop(image);
    spec.output
        .write(&canvas, target.width as usize, target.height as usize, slot);
    Ok(Placed {
        header,
        orientation,
        transform: plan.transform,
    })
}

/// Decodes each of `images` into its slot of one batch tensor.
///
/// Returns the tensor, `images.len() * spec.elements()` elements, and one result
/// per image in order; a failed image's slot holds padding.
///
/// # Errors
///
/// [`Error::InvalidArgument`] for an empty batch. Errors of single images are
/// in the per-image results.
pub fn preprocess_batch<D: AsRef<[u8]>>(
    images: &[D],
    spec: &Spec,
    limits: &Limits,
) -> Result<(TensorData, Vec<Result<Placed, Error>>), Error> {
    if images.is_empty() {
        return Err(Error::InvalidArgument("the batch is empty".into()));
    }
    let total = images
        .len()
        .checked_mul(spec.elements())
        .ok_or_else(|| Error::InvalidArgument("the batch is too large".into()))?;
    let mut data = TensorData::zeros(spec.output.dtype, total);
    let (w, h) = (spec.target.width as usize, spec.target.height as usize);
    let results = images
        .iter()
        .zip(data.slots(images.len()))
        .map(|(image, mut slot)| {
            let result = preprocess_into(image.as_ref(), spec, limits, &mut slot);
            if result.is_err() {
                spec.output.fill(spec.target.pad_value, w, h, &mut slot);
            }
            result
        })
        .collect();
    Ok((data, results))
}

/// Sniffs the format and reads the size from the header alone, checking `limits`.
///
/// Cheap: no pixel data is read, so a corrupt body is not detected here.
///
/// # Errors
///
/// [`Error::Empty`], [`Error::UnsupportedFormat`], [`Error::Corrupt`] (bad
/// header) or [`Error::TooLarge`].
pub fn probe(data: &[u8], limits: &Limits) -> Result<Header, Error> {
    read_checked_header(data, limits)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::codecs::png::PngEncoder;
    use image::{ExtendedColorType, ImageEncoder};

    #[test]
    fn decode_upright_keeps_every_pixel_of_an_upright_image() {
        let pixels: Vec<u8> = (0..5 * 3 * 3).map(|v: u32| v.to_le_bytes()[0]).collect();
        let mut png = Vec::new();
        PngEncoder::new(&mut png)
            .write_image(&pixels, 5, 3, ExtendedColorType::Rgb8)
            .unwrap();
        let upright = decode_upright(&png, &Limits::default(), [255; 3]).unwrap();
        assert_eq!(upright.orientation, Orientation::Identity);
        assert_eq!((upright.header.width, upright.header.height), (5, 3));
        assert_eq!(
            upright.image,
            RgbImage {
                width: 5,
                height: 3,
                pixels
            }
        );
    }

    #[test]
    fn decode_upright_checks_limits_first() {
        let limits = Limits {
            max_bytes: 4,
            ..Limits::default()
        };
        let result = decode_upright(&[0x89, b'P', b'N', b'G', 0], &limits, [0; 3]);
        assert!(matches!(result, Err(Error::TooLarge { .. })));
    }
}
