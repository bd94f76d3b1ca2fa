//! PNG header: the signature and the IHDR chunk that must follow it.

use super::Format;
use crate::error::Error;

/// The 8-byte PNG signature.
pub(super) const MAGIC: &[u8] = b"\x89PNG\r\n\x1a\n";

/// PNG caps both dimensions at 2^31 - 1 (PNG spec, 11.2.2).
const MAX_DIMENSION: u32 = 0x7FFF_FFFF;

/// Width and height from the IHDR chunk.
///
/// # Errors
///
/// [`Error::Corrupt`] if IHDR is missing, short or out of range.
pub(super) fn dimensions(data: &[u8]) -> Result<(u32, u32), Error> {
    let corrupt = |detail: &str| Error::corrupt(Format::Png, detail);
    // Signature (8), then IHDR's length (4), type (4), width (4) and height (4).
    let chunk: [u8; 16] = data
        .get(MAGIC.len()..MAGIC.len() + 16)
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or_else(|| corrupt("truncated before the IHDR chunk"))?;
    let [l0, l1, l2, l3, t0, t1, t2, t3, w0, w1, w2, w3, h0, h1, h2, h3] = chunk;
    if [t0, t1, t2, t3] != *b"IHDR" || u32::from_be_bytes([l0, l1, l2, l3]) != 13 {
        return Err(corrupt("the first chunk is not a valid IHDR"));
    }
    let width = u32::from_be_bytes([w0, w1, w2, w3]);
    let height = u32::from_be_bytes([h0, h1, h2, h3]);
    if width > MAX_DIMENSION || height > MAX_DIMENSION {
        return Err(corrupt("IHDR dimensions exceed 2^31 - 1"));
    }
    Ok((width, height))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(width: u32, height: u32) -> Vec<u8> {
        let mut data = MAGIC.to_vec();
        data.extend_from_slice(&13u32.to_be_bytes());
        data.extend_from_slice(b"IHDR");
        data.extend_from_slice(&width.to_be_bytes());
        data.extend_from_slice(&height.to_be_bytes());
        data.extend_from_slice(&[8, 2, 0, 0, 0]);
        data
    }

    #[test]
    fn reads_ihdr() {
        assert_eq!(dimensions(&header(640, 480)), Ok((640, 480)));
        assert_eq!(dimensions(&header(65535, 65535)), Ok((65535, 65535)));
    }

    #[test]
    fn truncated_or_malformed_ihdr_is_corrupt() {
        let data = header(640, 480);
        for cut in [8, 12, 16, 20, 23] {
            assert!(matches!(
                dimensions(&data[..cut]),
                Err(Error::Corrupt { .. })
            ));
        }
        let mut wrong = data.clone();
        wrong[12..16].copy_from_slice(b"IDAT");
        assert!(matches!(dimensions(&wrong), Err(Error::Corrupt { .. })));
        assert!(matches!(
            dimensions(&header(1 << 31, 1)),
            Err(Error::Corrupt { .. })
        ));
    }
}
