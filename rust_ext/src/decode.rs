//! Decoding to 8-bit RGB: limits first, then the `image` crate's decoders.

use std::io::Cursor;

use image::codecs::jpeg::JpegDecoder;
use image::codecs::png::PngDecoder;
use image::{DynamicImage, ImageDecoder, ImageError};

use crate::error::{Error, Limit};
use crate::format::{self, Format, Header};
use crate::limits::Limits;

/// Cap on a decoder's own buffers (PNG metadata chunks, row buffers); the
/// pixel buffer itself is bounded by [`Limits::max_pixels`].
const DECODER_SCRATCH_BYTES: u64 = 64 * 1024 * 1024;

/// Decoded pixels: 8-bit RGB, row-major, no row padding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RgbImage {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// `width * height * 3` bytes.
    pub pixels: Vec<u8>,
}

/// Decodes a JPEG or PNG into RGB8, checking `limits` before any pixel buffer exists.
///
/// Grayscale is expanded to RGB, 16-bit samples are rounded to 8 bits, and
/// alpha is flattened onto white.
///
/// # Errors
///
/// [`Error::TooLarge`] for a limit broken by the input size or the header;
/// [`Error::Empty`] / [`Error::UnsupportedFormat`] / [`Error::UnsupportedFeature`]
/// for what cannot be decoded; [`Error::Corrupt`] for truncated or malformed data.
pub fn decode(data: &[u8], limits: &Limits) -> Result<(Header, RgbImage), Error> {
    let header = read_checked_header(data, limits)?;
    let format = header.format;
    let decoder = open(data, format, limits)?;
    if decoder.dimensions() != (header.width, header.height) {
        return Err(Error::corrupt(
            format,
            "decoder and header disagree on the size",
        ));
    }
    let dynamic = DynamicImage::from_decoder(decoder).map_err(|e| from_image_error(format, e))?;
    let image = RgbImage {
        width: header.width,
        height: header.height,
        pixels: into_rgb8(dynamic),
    };
    Ok((header, image))
}

/// Reads the header and checks every limit; reads no pixel data.
///
/// # Errors
///
/// As [`decode`], less the errors only a full decode can find.
pub fn read_checked_header(data: &[u8], limits: &Limits) -> Result<Header, Error> {
    limits.check_bytes(data.len())?;
    let header = format::read_header(data)?;
    limits.check_header(&header)?;
    Ok(header)
}

fn open<'a>(
    data: &'a [u8],
    format: Format,
    limits: &Limits,
) -> Result<Box<dyn ImageDecoder + 'a>, Error> {
    let mut decoder_limits = image::Limits::default();
    decoder_limits.max_image_width = Some(limits.max_width);
    decoder_limits.max_image_height = Some(limits.max_height);
    decoder_limits.max_alloc = Some(DECODER_SCRATCH_BYTES);
    let from_image = |e| from_image_error(format, e);
    match format {
        Format::Jpeg => {
            format::jpeg::check_complete(data)?;
            let mut decoder = JpegDecoder::new(Cursor::new(data)).map_err(from_image)?;
            decoder.set_limits(decoder_limits).map_err(from_image)?;
            Ok(Box::new(decoder))
        }
        Format::Png => {
            let decoder =
                PngDecoder::with_limits(Cursor::new(data), decoder_limits).map_err(from_image)?;
            Ok(Box::new(decoder))
        }
    }
}

#[cold]
fn from_image_error(format: Format, err: ImageError) -> Error {
    match err {
        ImageError::Unsupported(e) => Error::UnsupportedFeature {
            format,
            detail: e.to_string(),
        },
        // Our own checks ran first, so this is a decoder's internal budget.
        ImageError::Limits(_) => Error::TooLarge {
            limit: Limit::DecoderMemory,
            actual: 0,
            max: DECODER_SCRATCH_BYTES,
        },
        ImageError::IoError(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            Error::corrupt(format, "truncated")
        }
        // "Format error decoding Png: X" says nothing our message doesn't: keep X.
        ImageError::Decoding(e) => Error::corrupt(
            format,
            std::error::Error::source(&e).map_or_else(|| e.to_string(), ToString::to_string),
        ),
        other => Error::corrupt(format, other.to_string()),
    }
}

/// Converts any decoded color type to packed RGB8, flattening alpha onto white.
fn into_rgb8(image: DynamicImage) -> Vec<u8> {
    if image.color().has_alpha() {
        flatten_on_white(image.into_rgba8().into_raw())
    } else {
        image.into_rgb8().into_raw()
    }
}

/// Composites RGBA8 onto an opaque white background, in place, returning RGB8.
fn flatten_on_white(mut rgba: Vec<u8>) -> Vec<u8> {
    let pixels = rgba.len() / 4;
    for i in 0..pixels {
        let (src, dst) = (4 * i, 3 * i);
        let alpha = u32::from(rgba[src + 3]);
        for c in 0..3 {
            // Writes land at or before the bytes still to be read, never on them.
            let value = u32::from(rgba[src + c]);
            let blended = (value * alpha + 255 * (255 - alpha) + 127) / 255;
            rgba[dst + c] = u8::try_from(blended).unwrap_or(u8::MAX);
        }
    }
    rgba.truncate(3 * pixels);
    rgba
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::codecs::jpeg::JpegEncoder;
    use image::codecs::png::PngEncoder;
    use image::{ExtendedColorType, ImageEncoder};

    /// A `width` x `height` gradient, RGB8.
    fn gradient(width: u32, height: u32) -> Vec<u8> {
        (0..height)
            .flat_map(|y| (0..width).flat_map(move |x| [low_byte(x * 7), low_byte(y * 5), 128]))
            .collect()
    }

    fn low_byte(v: u32) -> u8 {
        v.to_le_bytes()[0]
    }

    fn png(width: u32, height: u32, pixels: &[u8], color: ExtendedColorType) -> Vec<u8> {
        let mut out = Vec::new();
        PngEncoder::new(&mut out)
            .write_image(pixels, width, height, color)
            .unwrap();
        out
    }

    fn jpeg(width: u32, height: u32) -> Vec<u8> {
        let mut out = Vec::new();
        JpegEncoder::new_with_quality(&mut out, 95)
            .write_image(
                &gradient(width, height),
                width,
                height,
                ExtendedColorType::Rgb8,
            )
            .unwrap();
        out
    }

    #[test]
    fn decodes_png_losslessly() {
        let pixels = gradient(33, 17);
        let data = png(33, 17, &pixels, ExtendedColorType::Rgb8);
        let (header, image) = decode(&data, &Limits::default()).unwrap();
        assert_eq!(header.format, Format::Png);
        assert_eq!((image.width, image.height), (33, 17));
        assert_eq!(image.pixels, pixels);
    }

    #[test]
    fn decodes_grey_and_sixteen_bit_png_to_rgb8() {
        let grey = png(3, 1, &[0, 100, 255], ExtendedColorType::L8);
        let (_, image) = decode(&grey, &Limits::default()).unwrap();
        assert_eq!(image.pixels, [0, 0, 0, 100, 100, 100, 255, 255, 255]);

        let wide: Vec<u8> = [0u16, 257 * 100, 65535]
            .iter()
            .flat_map(|v| v.to_ne_bytes())
            .collect();
        let deep = png(3, 1, &wide, ExtendedColorType::L16);
        let (_, image) = decode(&deep, &Limits::default()).unwrap();
        assert_eq!(image.pixels, [0, 0, 0, 100, 100, 100, 255, 255, 255]);
    }

    #[test]
    fn decodes_jpeg() {
        let (header, image) = decode(&jpeg(40, 30), &Limits::default()).unwrap();
        assert_eq!(
            (header.format, header.width, header.height),
            (Format::Jpeg, 40, 30)
        );
        assert_eq!(image.pixels.len(), 40 * 30 * 3);
        let first = &image.pixels[..3];
        assert!(first[2].abs_diff(128) <= 3, "{first:?}");
    }

    #[test]
    fn truncated_input_is_corrupt() {
        let jpeg = jpeg(40, 30);
        let png = png(40, 30, &gradient(40, 30), ExtendedColorType::Rgb8);
        // JPEG: also just the end-of-image marker missing. (A PNG cut inside its
        // IEND trailer still holds every pixel, and decodes, as with Pillow.)
        let cases = [
            (&jpeg, jpeg.len() - 2),
            (&jpeg, jpeg.len() / 2),
            (&jpeg, 40),
            (&png, png.len() / 2),
            (&png, 40),
        ];
        for (data, cut) in cases {
            let result = decode(&data[..cut], &Limits::default());
            assert!(
                matches!(result, Err(Error::Corrupt { .. })),
                "cut at {cut}: {result:?}"
            );
        }
    }

    #[test]
    fn limits_are_checked_before_decoding() {
        let limits = Limits {
            max_pixels: 40 * 30 - 1,
            ..Limits::default()
        };
        // The body is cut off, so only a header check can produce this error.
        let data = jpeg(40, 30);
        assert!(matches!(
            decode(&data[..data.len() / 2], &limits),
            Err(Error::TooLarge {
                limit: Limit::Pixels,
                actual: 1200,
                ..
            })
        ));
    }

    #[test]
    fn flattens_alpha_on_white() {
        let rgba = vec![
            10, 20, 30, 255, // opaque: unchanged
            10, 20, 30, 0, // transparent: white
            0, 0, 0, 128, // half black: mid grey
            200, 100, 0, 64,
        ];
        assert_eq!(
            flatten_on_white(rgba),
            vec![10, 20, 30, 255, 255, 255, 127, 127, 127, 241, 216, 191]
        );
    }
}
