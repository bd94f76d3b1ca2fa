//! Format sniffing from magic bytes and header parsing that reads no pixel data.
//!
//! The headers are parsed here rather than by the decoders so that limits are
//! checked before a decoder copies, buffers or allocates anything.

mod others;
mod png;

use crate::error::Error;
pub use crate::image::{Format, Header};
use crate::jpeg::markers::{self as jpeg, Markers};

impl Format {
    /// The format whose magic bytes start `data`, if any.
    #[must_use]
    pub fn sniff(data: &[u8]) -> Option<Self> {
        if data.starts_with(jpeg::MAGIC) {
            Some(Self::Jpeg)
        } else if data.starts_with(png::MAGIC) {
            Some(Self::Png)
        } else if others::is_webp(data) {
            Some(Self::Webp)
        } else if others::is_gif(data) {
            Some(Self::Gif)
        } else if others::is_bmp(data) {
            Some(Self::Bmp)
        } else {
            None
        }
    }
}

/// Sniffs the format and reads the dimensions from the header only.
///
/// # Errors
///
/// [`Error::Empty`] for no bytes, [`Error::UnsupportedFormat`] for unknown
/// magic bytes, [`Error::Corrupt`] for a truncated or malformed header or a
/// zero dimension.
pub fn read_header(data: &[u8]) -> Result<Header, Error> {
    read(data).map(|(header, _)| header)
}

/// [`read_header`], with a JPEG's marker walk kept for its decode.
pub(crate) fn read(data: &[u8]) -> Result<(Header, Option<Markers>), Error> {
    if data.is_empty() {
        return Err(Error::Empty);
    }
    let format = Format::sniff(data).ok_or(Error::UnsupportedFormat)?;
    let mut markers = None;
    let (width, height) = match format {
        Format::Jpeg => markers.insert(Markers::parse(data)?).dimensions()?,
        Format::Png => png::dimensions(data)?,
        Format::Webp => others::webp_dimensions(data)?,
        Format::Gif => others::gif_dimensions(data)?,
        Format::Bmp => others::bmp_dimensions(data)?,
    };
    if width == 0 || height == 0 {
        return Err(Error::corrupt(
            format,
            format!("header gives a size of {width}x{height}"),
        ));
    }
    let header = Header {
        format,
        width,
        height,
    };
    Ok((header, markers))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_magic_bytes() {
        assert_eq!(Format::sniff(b"\xFF\xD8\xFF\xE0rest"), Some(Format::Jpeg));
        assert_eq!(Format::sniff(b"\x89PNG\r\n\x1a\nrest"), Some(Format::Png));
        assert_eq!(Format::sniff(b"GIF89a"), Some(Format::Gif));
        assert_eq!(Format::sniff(b"RIFF\0\0\0\0WEBPVP8 "), Some(Format::Webp));
        assert_eq!(Format::sniff(b"II*\0"), None);
        assert_eq!(Format::sniff(b"\x89PNG"), None);
        assert_eq!(Format::sniff(b""), None);
    }

    #[test]
    fn empty_and_unknown_input() {
        assert_eq!(read_header(b""), Err(Error::Empty));
        assert_eq!(read_header(b"hello, world"), Err(Error::UnsupportedFormat));
        assert_eq!(read_header(b"<svg/>"), Err(Error::UnsupportedFormat));
    }
}
