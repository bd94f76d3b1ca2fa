//! The plain data every step shares: an encoded image's [`Format`] and
//! [`Header`], decoded [`RgbImage`] pixels and a DCT-domain [`Reduction`].
//!
//! A leaf: it imports nothing of the crate, so every module may use it.

/// An encoded image format the crate can sniff and decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Format {
    /// JPEG (JFIF/EXIF), baseline or progressive.
    Jpeg,
    /// PNG, any bit depth and color type.
    Png,
    /// WebP, lossy or lossless, with or without alpha (first frame).
    Webp,
    /// GIF (first frame).
    Gif,
    /// Windows or OS/2 bitmap.
    Bmp,
}

impl Format {
    /// Lower-case name, as reported to Python (`"jpeg"`, `"png"`, `"webp"`, `"gif"`, `"bmp"`).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Jpeg => "jpeg",
            Self::Png => "png",
            Self::Webp => "webp",
            Self::Gif => "gif",
            Self::Bmp => "bmp",
        }
    }

    /// Upper-case name for messages (`"JPEG"`, `"PNG"`, ...).
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Self::Jpeg => "JPEG",
            Self::Png => "PNG",
            Self::Webp => "WebP",
            Self::Gif => "GIF",
            Self::Bmp => "BMP",
        }
    }
}

/// What the header says about an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Format sniffed from the magic bytes.
    pub format: Format,
    /// Width in pixels (at least 1).
    pub width: u32,
    /// Height in pixels (at least 1).
    pub height: u32,
}

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

/// How many times a decoder shrinks (or shrank) the stored image on each
/// axis: 1, 2, 4 or 8 (JPEG's DCT-domain scaling).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reduction {
    /// Horizontal factor.
    pub x: u32,
    /// Vertical factor.
    pub y: u32,
}

impl Reduction {
    /// Full size.
    pub const NONE: Self = Self { x: 1, y: 1 };

    /// The same factor on both axes.
    #[must_use]
    pub fn uniform(factor: u32) -> Self {
        Self {
            x: factor,
            y: factor,
        }
    }
}
