//! Decoding to 8-bit RGB: limits first, then libjpeg-turbo for JPEG (with
//! DCT-domain scaling) or the `image` crate's decoders for the other formats.

use std::io::Cursor;

use image::codecs::bmp::BmpDecoder;
use image::codecs::gif::GifDecoder;
use image::codecs::png::PngDecoder;
use image::codecs::webp::WebPDecoder;
use image::{DynamicImage, ImageDecoder, ImageError};
use turbojpeg::{Colorspace, Decompressor, PixelFormat, ScalingFactor};

use crate::error::{Error, Limit};
use crate::format;
use crate::image::{Format, Header, Reduction, RgbImage};
use crate::jpeg;
use crate::jpeg::markers::Markers;
use crate::limits::Limits;
use crate::orientation::Orientation;

/// Cap on a decoder's own buffers (PNG metadata chunks, row buffers, GIF and
/// WebP frames) beyond the pixels that [`Limits::max_pixels`] already bounds.
const DECODER_SCRATCH_BYTES: u64 = 16 * 1024 * 1024;

/// Most scans a progressive JPEG may have; more is a denial-of-service pattern
/// (libjpeg-turbo's advice), never a real camera or encoder.
const MAX_JPEG_SCANS: u32 = 500;

/// An image whose header has been read and checked, ready to decode.
pub struct Source<'a> {
    /// Format and stored size.
    pub header: Header,
    /// How the stored image is turned upright (EXIF).
    pub orientation: Orientation,
    data: &'a [u8],
    body: Body<'a>,
}

/// What decodes a [`Source`]'s pixels.
enum Body<'a> {
    /// A JPEG: libjpeg-turbo or [`jpeg::decode_scaled`], with the marker walk
    /// its header came from.
    Jpeg(Markers),
    /// Another format: the `image` crate's decoder, opened.
    Other(Box<dyn ImageDecoder + 'a>),
}

impl std::fmt::Debug for Source<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Source")
            .field("header", &self.header)
            .field("orientation", &self.orientation)
            .finish_non_exhaustive()
    }
}

impl<'a> Source<'a> {
    /// Reads and checks the header and the orientation; decodes no pixels.
    ///
    /// # Errors
    ///
    /// [`Error::TooLarge`] for a limit broken by the input size or the header;
    /// [`Error::Empty`] / [`Error::UnsupportedFormat`] / [`Error::UnsupportedFeature`]
    /// for what cannot be decoded; [`Error::Corrupt`] for a malformed header.
    pub fn open(data: &'a [u8], limits: &Limits) -> Result<Self, Error> {
        let (header, markers) = read_checked(data, limits)?;
        let format = header.format;
        if let Some(markers) = markers {
            markers.check_complete(data)?;
            return Ok(Self {
                header,
                orientation: Orientation::from_exif(markers.orientation(data)),
                data,
                body: Body::Jpeg(markers),
            });
        }
        let mut decoder = open_image_decoder(data, format, limits)?;
        if decoder.dimensions() != (header.width, header.height) {
            return Err(Error::corrupt(
                format,
                "decoder and header disagree on the size",
            ));
        }
        // A broken EXIF block is no reason to refuse the pixels.
        let orientation = decoder.orientation().map_or(Orientation::Identity, |o| {
            Orientation::from_exif(o.to_exif())
        });
        Ok(Self {
            header,
            orientation,
            data,
            body: Body::Other(decoder),
        })
    }

    /// Decodes to RGB8, alpha flattened onto `background`. A JPEG is shrunk
    /// in the DCT domain by up to `reduction` per axis; other formats ignore
    /// it. Returns the image and the reduction applied.
    ///
    /// # Errors
    ///
    /// [`Error::Corrupt`] for truncated or malformed data,
    /// [`Error::UnsupportedFeature`] for what the decoder lacks.
    pub fn decode(
        self,
        reduction: Reduction,
        background: [u8; 3],
    ) -> Result<(RgbImage, Reduction), Error> {
        let format = self.header.format;
        match self.body {
            Body::Jpeg(markers) => decode_jpeg(self.data, &markers, reduction),
            Body::Other(decoder) => {
                let dynamic =
                    DynamicImage::from_decoder(decoder).map_err(|e| from_image_error(format, e))?;
                let image = RgbImage {
                    width: self.header.width,
                    height: self.header.height,
                    pixels: into_rgb8(dynamic, background),
                };
                Ok((image, Reduction::NONE))
            }
        }
    }
}

/// Reads the header and checks every limit; reads no pixel data.
///
/// # Errors
///
/// As [`Source::open`], less the errors only a decoder can find.
pub fn read_checked_header(data: &[u8], limits: &Limits) -> Result<Header, Error> {
    read_checked(data, limits).map(|(header, _)| header)
}

/// [`read_checked_header`], with a JPEG's marker walk kept for its decode.
fn read_checked(data: &[u8], limits: &Limits) -> Result<(Header, Option<Markers>), Error> {
    limits.check_bytes(data.len())?;
    let (header, markers) = format::read(data)?;
    limits.check_header(&header)?;
    Ok((header, markers))
}

/// A JPEG shrunk by up to `want` per axis: by [`jpeg`] from a few
/// coefficients when it handles the file and the factors, else by
/// libjpeg-turbo, uniformly by the smaller factor (lossless JPEG is never scaled).
fn decode_jpeg(
    data: &[u8],
    markers: &Markers,
    want: Reduction,
) -> Result<(RgbImage, Reduction), Error> {
    let want = Reduction {
        x: want.x.clamp(1, 8),
        y: want.y.clamp(1, 8),
    };
    if let Some(scaled) = decode_few_coefficients(data, want) {
        return Ok(scaled);
    }
    let reduction = want.x.min(want.y);
    let mut decompressor = Decompressor::new().map_err(Error::internal)?;
    decompressor
        .set_scan_limit(MAX_JPEG_SCANS)
        .map_err(Error::internal)?;
    // Megabytes of metadata (an ICC profile in 254 chunks, say) cost
    // libjpeg-turbo time and memory for nothing: it is dropped first.
    let lean = markers.without_bulky_metadata(data);
    let data = lean.as_deref().unwrap_or(data);
    let header = decompressor.read_header(data).map_err(jpeg_error)?;
    let reduction = if header.is_lossless { 1 } else { reduction };
    let factor = ScalingFactor::new(1, reduction as usize);
    decompressor
        .set_scaling_factor(factor)
        .map_err(Error::internal)?;
    let scaled = header.scaled(factor);
    let cmyk = matches!(header.colorspace, Colorspace::CMYK | Colorspace::YCCK);
    let format = if cmyk {
        PixelFormat::CMYK
    } else {
        PixelFormat::RGB
    };
    let pitch = scaled.width * format.size();
    let mut image = turbojpeg::Image {
        pixels: vec![0; pitch * scaled.height],
        width: scaled.width,
        pitch,
        height: scaled.height,
        format,
    };
    match decompressor.decompress(data, image.as_deref_mut()) {
        Ok(()) => {}
        // The whole image was decoded; libjpeg only noted damage it worked
        // around, which Pillow and browsers show too.
        Err(turbojpeg::Error::TurboJpegError(message)) if is_jpeg_warning(&message) => {}
        Err(e) => return Err(jpeg_error(e)),
    }
    let pixels = if cmyk {
        inverted_cmyk_to_rgb(image.pixels)
    } else {
        image.pixels
    };
    let size = |v: usize| u32::try_from(v).map_err(Error::internal);
    Ok((
        RgbImage {
            width: size(scaled.width)?,
            height: size(scaled.height)?,
            pixels,
        },
        Reduction::uniform(reduction),
    ))
}

/// [`jpeg`]'s paths, when `want` allows one: 1/8 on both axes (DC
/// only), or 1/8 on one and 1/4 on the other (a 16:9 frame to a square input).
fn decode_few_coefficients(data: &[u8], want: Reduction) -> Option<(RgbImage, Reduction)> {
    let applied = match (want.x, want.y) {
        (8, 8) => want,
        (8, 4..) => Reduction { x: 8, y: 4 },
        (4.., 8) => Reduction { x: 4, y: 8 },
        _ => return None,
    };
    let scaled = jpeg::decode_scaled(data, applied.x, applied.y)?;
    let image = RgbImage {
        width: scaled.width,
        height: scaled.height,
        pixels: scaled.pixels,
    };
    Some((image, applied))
}

#[cold]
fn jpeg_error(err: turbojpeg::Error) -> Error {
    match err {
        turbojpeg::Error::TurboJpegError(message) => Error::corrupt(Format::Jpeg, message),
        other => Error::internal(other),
    }
}

/// Whether libjpeg's message is one of its warnings (`JWRN_*` in `jerror.h`):
/// damage it recovered from, after which every pixel row was still produced.
fn is_jpeg_warning(message: &str) -> bool {
    const WARNINGS: [&str; 6] = [
        "Corrupt JPEG data",
        "Warning: unknown JFIF revision",
        "Inconsistent progression sequence",
        "Invalid SOS parameters for sequential JPEG",
        "Unknown Adobe color transform code",
        "Premature end of JPEG file",
    ];
    WARNINGS.iter().any(|w| message.contains(w))
}

/// CMYK JPEGs are written inverted (Adobe's convention, which every encoder
/// follows and Pillow assumes): converts them to RGB as Pillow's `convert("RGB")`.
fn inverted_cmyk_to_rgb(mut cmyk: Vec<u8>) -> Vec<u8> {
    let pixels = cmyk.len() / 4;
    for i in 0..pixels {
        let (src, dst) = (4 * i, 3 * i);
        let k = u32::from(255 - cmyk[src + 3]);
        let not_k = 255 - k;
        for c in 0..3 {
            // Writes land at or before the bytes still to be read, never on them.
            let ink = u32::from(255 - cmyk[src + c]);
            let product = ink * not_k + 128;
            let covered = ((product >> 8) + product) >> 8;
            cmyk[dst + c] = u8::try_from(not_k.saturating_sub(covered)).unwrap_or(0);
        }
    }
    cmyk.truncate(3 * pixels);
    cmyk
}

fn open_image_decoder<'a>(
    data: &'a [u8],
    format: Format,
    limits: &Limits,
) -> Result<Box<dyn ImageDecoder + 'a>, Error> {
    let mut decoder_limits = image::Limits::default();
    decoder_limits.max_image_width = Some(limits.max_width);
    decoder_limits.max_image_height = Some(limits.max_height);
    decoder_limits.max_alloc = Some(DECODER_SCRATCH_BYTES);
    let from_image = |e| from_image_error(format, e);
    let reader = Cursor::new(data);
    let mut decoder: Box<dyn ImageDecoder + 'a> = match format {
        Format::Png => {
            Box::new(PngDecoder::with_limits(reader, decoder_limits.clone()).map_err(from_image)?)
        }
        Format::Webp => Box::new(WebPDecoder::new(reader).map_err(from_image)?),
        Format::Gif => Box::new(GifDecoder::new(reader).map_err(from_image)?),
        Format::Bmp => Box::new(BmpDecoder::new(reader).map_err(from_image)?),
        Format::Jpeg => return Err(Error::internal("JPEG goes to libjpeg-turbo")),
    };
    decoder.set_limits(decoder_limits).map_err(from_image)?;
    Ok(decoder)
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

/// Converts any decoded color type to packed RGB8, flattening alpha onto `background`.
fn into_rgb8(image: DynamicImage, background: [u8; 3]) -> Vec<u8> {
    if image.color().has_alpha() {
        flatten(image.into_rgba8().into_raw(), background)
    } else {
        image.into_rgb8().into_raw()
    }
}

/// Composites RGBA8 onto an opaque `background`, in place, returning RGB8.
fn flatten(mut rgba: Vec<u8>, background: [u8; 3]) -> Vec<u8> {
    let pixels = rgba.len() / 4;
    for i in 0..pixels {
        let (src, dst) = (4 * i, 3 * i);
        let alpha = u32::from(rgba[src + 3]);
        for (c, &bg) in background.iter().enumerate() {
            // Writes land at or before the bytes still to be read, never on them.
            let value = u32::from(rgba[src + c]);
            let blended = (value * alpha + u32::from(bg) * (255 - alpha) + 127) / 255;
            rgba[dst + c] = u8::try_from(blended).unwrap_or(u8::MAX);
        }
    }
    rgba.truncate(3 * pixels);
    rgba
}

#[cfg(test)]
mod tests {
    use super::*;
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
        let pixels = gradient(width, height);
        let image = turbojpeg::Image {
            pixels: pixels.as_slice(),
            width: width as usize,
            pitch: width as usize * 3,
            height: height as usize,
            format: PixelFormat::RGB,
        };
        turbojpeg::compress(image, 95, turbojpeg::Subsamp::Sub2x2)
            .unwrap()
            .to_vec()
    }

    fn decode(data: &[u8], reduction: u32) -> Result<(Header, RgbImage), Error> {
        let source = Source::open(data, &Limits::default())?;
        let header = source.header;
        let (image, _) = source.decode(Reduction::uniform(reduction), [255, 255, 255])?;
        Ok((header, image))
    }

    #[test]
    fn decodes_png_losslessly() {
        let pixels = gradient(33, 17);
        let data = png(33, 17, &pixels, ExtendedColorType::Rgb8);
        let (header, image) = decode(&data, 1).unwrap();
        assert_eq!(header.format, Format::Png);
        assert_eq!((image.width, image.height), (33, 17));
        assert_eq!(image.pixels, pixels);
    }

    #[test]
    fn decodes_grey_and_sixteen_bit_png_to_rgb8() {
        let grey = png(3, 1, &[0, 100, 255], ExtendedColorType::L8);
        let (_, image) = decode(&grey, 1).unwrap();
        assert_eq!(image.pixels, [0, 0, 0, 100, 100, 100, 255, 255, 255]);

        let wide: Vec<u8> = [0u16, 257 * 100, 65535]
            .iter()
            .flat_map(|v| v.to_ne_bytes())
            .collect();
        let deep = png(3, 1, &wide, ExtendedColorType::L16);
        let (_, image) = decode(&deep, 1).unwrap();
        assert_eq!(image.pixels, [0, 0, 0, 100, 100, 100, 255, 255, 255]);
    }

    #[test]
    fn decodes_jpeg_and_shrinks_it_in_the_dct_domain() {
        let data = jpeg(40, 30);
        let (header, image) = decode(&data, 1).unwrap();
        assert_eq!(
            (header.format, header.width, header.height),
            (Format::Jpeg, 40, 30)
        );
        assert_eq!(image.pixels.len(), 40 * 30 * 3);
        assert!(
            image.pixels[2].abs_diff(128) <= 3,
            "{:?}",
            &image.pixels[..3]
        );
        for (reduction, size) in [(2, (20, 15)), (4, (10, 8)), (8, (5, 4))] {
            let source = Source::open(&data, &Limits::default()).unwrap();
            let (image, applied) = source
                .decode(Reduction::uniform(reduction), [0; 3])
                .unwrap();
            assert_eq!(
                (applied, (image.width, image.height)),
                (Reduction::uniform(reduction), size)
            );
            // Blue is 128 everywhere; chroma blurs across the red wrap-around edge.
            let blue: u32 = image.pixels.chunks(3).map(|p| u32::from(p[2])).sum();
            let mean = blue / (size.0 * size.1);
            assert!(
                mean.abs_diff(128) <= 4,
                "reduction {reduction}: mean blue {mean}"
            );
        }
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
            let result = decode(&data[..cut], 1);
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
            Source::open(&data[..data.len() / 2], &limits),
            Err(Error::TooLarge {
                limit: Limit::Pixels,
                actual: 1200,
                ..
            })
        ));
    }

    /// `data` with an EXIF block (orientation 6) and a `comment_bytes` COM segment
    /// inserted after SOI.
    fn with_metadata(data: &[u8], comment_bytes: usize) -> Vec<u8> {
        let mut exif = b"Exif\0\0MM\0\x2a\0\0\0\x08\0\x01".to_vec();
        exif.extend_from_slice(&[0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 6, 0, 0, 0, 0, 0, 0]);
        let mut out = data[..2].to_vec();
        for (marker, body) in [(0xE1, exif), (0xFE, vec![b'x'; comment_bytes])] {
            for chunk in body.chunks(65_533) {
                let length = u16::try_from(chunk.len() + 2).unwrap();
                out.extend_from_slice(&[0xFF, marker]);
                out.extend_from_slice(&length.to_be_bytes());
                out.extend_from_slice(chunk);
            }
        }
        out.extend_from_slice(&data[2..]);
        out
    }

    #[test]
    fn bulky_metadata_is_dropped_before_decoding_and_exif_still_read() {
        let plain = jpeg(40, 30);
        let bulky = with_metadata(&plain, 300 * 1024);
        let source = Source::open(&bulky, &Limits::default()).unwrap();
        assert_eq!(source.orientation, Orientation::Rotate90);
        let Body::Jpeg(markers) = &source.body else {
            panic!("a JPEG opens as one");
        };
        let lean = markers.without_bulky_metadata(&bulky).unwrap();
        assert_eq!(lean, plain);
        // Under the budget, the data is decoded as it is.
        let small = with_metadata(&plain, 1024);
        let source = Source::open(&small, &Limits::default()).unwrap();
        let Body::Jpeg(markers) = &source.body else {
            panic!("a JPEG opens as one");
        };
        assert_eq!(markers.without_bulky_metadata(&small), None);
        for reduction in [1, 2, 8] {
            let (_, a) = decode(&plain, reduction).unwrap();
            let (_, b) = decode(&bulky, reduction).unwrap();
            assert_eq!(a.pixels, b.pixels, "reduction {reduction}");
        }
    }

    #[test]
    fn jpeg_warnings_do_not_fail_the_decode() {
        // Junk between the scan data and EOI: libjpeg warns ("extraneous bytes
        // before marker"), as Pillow and browsers it shows the pixels.
        let mut data = jpeg(40, 30);
        let eoi = data.len() - 2;
        data.splice(eoi..eoi, [0x12, 0x34, 0x56]);
        let (_, image) = decode(&data, 1).unwrap();
        assert_eq!((image.width, image.height), (40, 30));
    }

    #[test]
    fn flattens_alpha_on_the_background() {
        let rgba = vec![
            10, 20, 30, 255, // opaque: unchanged
            10, 20, 30, 0, // transparent: the background
            0, 0, 0, 128, // half black
            200, 100, 0, 64,
        ];
        assert_eq!(
            flatten(rgba.clone(), [255, 255, 255]),
            vec![10, 20, 30, 255, 255, 255, 127, 127, 127, 241, 216, 191]
        );
        assert_eq!(
            flatten(rgba, [0, 100, 200]),
            vec![10, 20, 30, 0, 100, 200, 0, 50, 100, 50, 100, 150]
        );
    }

    #[test]
    fn cmyk_follows_pillow() {
        // Stored inverted: 255 is no ink. White, black (K), and half cyan.
        let cmyk = vec![255, 255, 255, 255, 255, 255, 255, 0, 127, 255, 255, 255];
        assert_eq!(
            inverted_cmyk_to_rgb(cmyk),
            vec![255, 255, 255, 0, 0, 0, 127, 255, 255]
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]
        /// Damaged JPEGs through the whole path (marker walk, limits, metadata
        /// trimming, the few-coefficient decoder and libjpeg-turbo at every scale)
        /// give an image or an error, never a panic.
        #[test]
        fn damaged_jpegs_never_panic(
            bulky in proptest::prelude::any::<bool>(),
            scale in 0usize..5,
            flips in proptest::collection::vec(
                (proptest::prelude::any::<u32>(), proptest::prelude::any::<u8>()),
                0..6,
            ),
            cut in proptest::prelude::any::<u32>(),
            truncate in proptest::prelude::any::<bool>(),
        ) {
            let mut data = with_metadata(&jpeg(45, 30), if bulky { 300 * 1024 } else { 16 });
            // Most flips land in the headers, where the walk's branches are.
            for (at, value) in flips {
                let span = if at % 2 == 0 { data.len() } else { data.len().min(700) };
                let i = usize::try_from(at).unwrap() % span;
                data[i] = value;
            }
            if truncate {
                data.truncate(usize::try_from(cut).unwrap() % (data.len() + 1));
            }
            let (x, y) = [(1, 1), (2, 2), (8, 8), (8, 4), (4, 8)][scale];
            let decoded = Source::open(&data, &Limits::default())
                .and_then(|source| source.decode(Reduction { x, y }, [255; 3]));
            if let Ok((image, _)) = decoded {
                let (w, h) = (image.width as usize, image.height as usize);
                proptest::prop_assert_eq!(image.pixels.len(), w * h * 3);
            }
        }
    }
}
