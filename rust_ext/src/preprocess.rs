//! The whole pipeline: encoded bytes to model-input tensor, and header-only probing.

use crate::decode::{decode, read_checked_header};
use crate::error::Error;
use crate::format::Header;
use crate::limits::Limits;
use crate::resize::{resize, Target, Transform};
use crate::tensor::{DType, Tensor};

/// A model-input tensor and how it relates to the original image.
#[derive(Debug, Clone, PartialEq)]
pub struct Preprocessed {
    /// `(target.height, target.width, 3)` in the requested dtype.
    pub tensor: Tensor,
    /// Format and original size, from the header.
    pub header: Header,
    /// Maps tensor coordinates back to original-image coordinates.
    pub transform: Transform,
}

/// Decodes `data`, resizes it to `target` and converts it to `dtype`.
///
/// # Errors
///
/// Any [`Error`]: limits are checked from the header before decoding.
pub fn preprocess(
    data: &[u8],
    target: &Target,
    dtype: DType,
    limits: &Limits,
) -> Result<Preprocessed, Error> {
    let (header, image) = decode(data, limits)?;
    let (pixels, transform) = resize(&image, target)?;
    drop(image);
    let tensor = Tensor::from_rgb8(target.width as usize, target.height as usize, pixels, dtype);
    Ok(Preprocessed {
        tensor,
        header,
        transform,
    })
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
