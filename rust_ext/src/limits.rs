//! Decoder limits, checked against the input size and the header before decoding.

use crate::error::{Error, Limit};
use crate::image::Header;

/// Upper bounds on what a caller may send; every field is inclusive.
///
/// [`Limits::DEFAULT`] is the one place the defaults are written: the Python
/// `adapter.imaging.Limits` and the service's settings take theirs from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest encoded input in bytes. Default: 20 MiB.
    pub max_bytes: u64,
    /// Largest width in pixels. Default: 16384.
    pub max_width: u32,
    /// Largest height in pixels. Default: 16384.
    pub max_height: u32,
    /// Largest width x height. Default: 64 000 000 (a 3-byte RGB buffer of 192 MB).
    pub max_pixels: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl Limits {
    /// The defaults: 20 MiB, 16384 x 16384, 64 000 000 pixels.
    pub const DEFAULT: Self = Self {
        max_bytes: 20 * 1024 * 1024,
        max_width: 16_384,
        max_height: 16_384,
        max_pixels: 64_000_000,
    };

    /// Checks the encoded size.
    ///
    /// # Errors
    ///
    /// [`Error::TooLarge`] with [`Limit::Bytes`] if `len` exceeds `max_bytes`.
    pub fn check_bytes(&self, len: usize) -> Result<(), Error> {
        // usize -> u64 never truncates on supported targets; saturate anyway.
        let actual = u64::try_from(len).unwrap_or(u64::MAX);
        check(Limit::Bytes, actual, self.max_bytes)
    }

    /// Checks the dimensions a header declares.
    ///
    /// # Errors
    ///
    /// [`Error::TooLarge`] naming the first limit broken: width, height, pixels.
    pub fn check_header(&self, header: &Header) -> Result<(), Error> {
        check(Limit::Width, header.width.into(), self.max_width.into())?;
        check(Limit::Height, header.height.into(), self.max_height.into())?;
        // u32 x u32 always fits in u64.
        let pixels = u64::from(header.width) * u64::from(header.height);
        check(Limit::Pixels, pixels, self.max_pixels)
    }
}

fn check(limit: Limit, actual: u64, max: u64) -> Result<(), Error> {
    if actual <= max {
        Ok(())
    } else {
        Err(Error::TooLarge { limit, actual, max })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::Format;

    fn header(width: u32, height: u32) -> Header {
        Header {
            format: Format::Png,
            width,
            height,
        }
    }

    #[test]
    fn defaults_are_documented_values() {
        let limits = Limits::default();
        assert_eq!(limits.max_bytes, 20_971_520);
        assert_eq!((limits.max_width, limits.max_height), (16_384, 16_384));
        assert_eq!(limits.max_pixels, 64_000_000);
    }

    #[test]
    fn bytes_limit_is_inclusive() {
        let limits = Limits {
            max_bytes: 10,
            ..Limits::default()
        };
        assert_eq!(limits.check_bytes(10), Ok(()));
        assert_eq!(
            limits.check_bytes(11),
            Err(Error::TooLarge {
                limit: Limit::Bytes,
                actual: 11,
                max: 10
            })
        );
    }

    #[test]
    fn dimension_limits_name_the_first_broken() {
        let limits = Limits::default();
        assert_eq!(limits.check_header(&header(16_384, 3_906)), Ok(()));
        let too_large = |h: &Header| match limits.check_header(h) {
            Err(Error::TooLarge { limit, .. }) => Some(limit),
            _ => None,
        };
        assert_eq!(too_large(&header(16_385, 1)), Some(Limit::Width));
        assert_eq!(too_large(&header(1, 16_385)), Some(Limit::Height));
        assert_eq!(too_large(&header(16_384, 16_384)), Some(Limit::Pixels));
        assert_eq!(too_large(&header(65_535, 65_535)), Some(Limit::Width));
        assert_eq!(too_large(&header(u32::MAX, u32::MAX)), Some(Limit::Width));
    }

    #[test]
    fn pixel_product_does_not_overflow() {
        let limits = Limits {
            max_width: u32::MAX,
            max_height: u32::MAX,
            ..Limits::default()
        };
        assert!(matches!(
            limits.check_header(&header(u32::MAX, u32::MAX)),
            Err(Error::TooLarge {
                limit: Limit::Pixels,
                actual: 18_446_744_065_119_617_025,
                ..
            })
        ));
    }
}
