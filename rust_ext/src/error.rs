//! The one error type of the crate; the Python layer maps each variant to an exception.

use std::fmt;

use crate::image::Format;

/// Which configured limit an image broke (see [`crate::Limits`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Size of the encoded input in bytes.
    Bytes,
    /// Width in pixels, from the header.
    Width,
    /// Height in pixels, from the header.
    Height,
    /// Width times height, from the header.
    Pixels,
    /// A decoder's own working memory (e.g. a PNG metadata chunk that inflates too far).
    DecoderMemory,
}

/// Everything that can go wrong turning encoded bytes into a tensor.
///
/// Messages are safe to show to a client: they name the problem, never a
/// path, an address or a backtrace.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The input has no bytes at all.
    Empty,
    /// The magic bytes match no format this crate decodes.
    UnsupportedFormat,
    /// A recognised format using a feature the decoder lacks.
    UnsupportedFeature {
        /// Format sniffed from the magic bytes.
        format: Format,
        /// What is not supported, from the decoder.
        detail: String,
    },
    /// The image is truncated or malformed.
    Corrupt {
        /// Format sniffed from the magic bytes.
        format: Format,
        /// What is wrong, from the header parser or the decoder.
        detail: String,
    },
    /// The image breaks a configured limit; found from the header, before decoding.
    TooLarge {
        /// The limit broken.
        limit: Limit,
        /// The image's value (0 for [`Limit::DecoderMemory`], which the decoder does not report).
        actual: u64,
        /// The configured maximum.
        max: u64,
    },
    /// The caller asked for something meaningless (e.g. a zero output size).
    InvalidArgument(String),
    /// A bug in this crate or a dependency, not a property of the input alone.
    Internal(String),
}

impl Error {
    /// A [`Error::Corrupt`] for `format` with `detail`.
    #[cold]
    pub(crate) fn corrupt(format: Format, detail: impl Into<String>) -> Self {
        Self::Corrupt {
            format,
            detail: detail.into(),
        }
    }

    /// A [`Error::Internal`] from any displayable error.
    #[cold]
    pub(crate) fn internal(err: impl fmt::Display) -> Self {
        Self::Internal(err.to_string())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("image data is empty"),
            Self::UnsupportedFormat => {
                f.write_str("unsupported image format: expected JPEG, PNG, WebP, GIF or BMP")
            }
            Self::UnsupportedFeature { format, detail } => {
                write!(f, "unsupported {} image: {detail}", format.label())
            }
            Self::Corrupt { format, detail } => {
                write!(f, "corrupt {} image: {detail}", format.label())
            }
            Self::TooLarge { limit, actual, max } => match limit {
                Limit::Bytes => write!(f, "image is {actual} bytes; the limit is {max}"),
                Limit::Width => write!(f, "image is {actual} pixels wide; the limit is {max}"),
                Limit::Height => write!(f, "image is {actual} pixels high; the limit is {max}"),
                Limit::Pixels => write!(f, "image has {actual} pixels; the limit is {max}"),
                Limit::DecoderMemory => {
                    write!(f, "image needs more than {max} bytes of decoder memory")
                }
            },
            Self::InvalidArgument(detail) => write!(f, "invalid argument: {detail}"),
            Self::Internal(detail) => write!(f, "internal error: {detail}"),
        }
    }
}

impl std::error::Error for Error {}
