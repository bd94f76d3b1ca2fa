//! Headers of the formats decoded by the `image` crate besides PNG: WebP
//! (RIFF), GIF and BMP. Each reads the canvas size without touching pixels.

use super::Format;
use crate::error::Error;

/// `RIFF` at 0 and `WEBP` at 8 (bytes 4..8 are the RIFF size).
pub(super) fn is_webp(data: &[u8]) -> bool {
    data.get(..4) == Some(b"RIFF".as_slice()) && data.get(8..12) == Some(b"WEBP".as_slice())
}

/// `GIF87a` or `GIF89a`.
pub(super) fn is_gif(data: &[u8]) -> bool {
    data.starts_with(b"GIF87a") || data.starts_with(b"GIF89a")
}

/// `BM`, then a plausible DIB header size (12 for OS/2 `BITMAPCOREHEADER`,
/// 16..=124 for the Windows headers), so that text starting "BM" is not a BMP.
pub(super) fn is_bmp(data: &[u8]) -> bool {
    data.starts_with(b"BM")
        && le_u32(data, 14).is_some_and(|size| size == 12 || (16..=124).contains(&size))
}

/// The canvas size of a WebP: from `VP8X`, or the first `VP8 ` / `VP8L` frame.
pub(super) fn webp_dimensions(data: &[u8]) -> Result<(u32, u32), Error> {
    let corrupt = |detail: &str| Error::corrupt(Format::Webp, detail);
    let chunk = data
        .get(12..16)
        .ok_or_else(|| corrupt("truncated before the first chunk"))?;
    let body = data.get(20..).unwrap_or_default();
    match chunk {
        b"VP8X" => {
            // Flags (1), reserved (3), canvas width - 1 (3, LE), height - 1 (3, LE).
            let (Some(w), Some(h)) = (le_u24(body, 4), le_u24(body, 7)) else {
                return Err(corrupt("truncated VP8X chunk"));
            };
            Ok((w + 1, h + 1))
        }
        b"VP8 " => {
            // Frame tag (3), start code 9D 01 2A, then 14-bit width and height (LE, 2 scale bits).
            if body.get(3..6) != Some([0x9D, 0x01, 0x2A].as_slice()) {
                return Err(corrupt("missing VP8 start code"));
            }
            let (Some(w), Some(h)) = (le_u16(body, 6), le_u16(body, 8)) else {
                return Err(corrupt("truncated VP8 frame header"));
            };
            Ok((u32::from(w & 0x3FFF), u32::from(h & 0x3FFF)))
        }
        b"VP8L" => {
            // Signature 0x2F, then 14 bits width - 1 and 14 bits height - 1, LSB first.
            if body.first() != Some(&0x2F) {
                return Err(corrupt("missing VP8L signature"));
            }
            let bits = le_u32(body, 1).ok_or_else(|| corrupt("truncated VP8L header"))?;
            Ok(((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1))
        }
        _ => Err(corrupt("the first chunk is not VP8, VP8L or VP8X")),
    }
}

/// The logical screen size of a GIF (every frame is drawn inside it).
pub(super) fn gif_dimensions(data: &[u8]) -> Result<(u32, u32), Error> {
    match (le_u16(data, 6), le_u16(data, 8)) {
        (Some(w), Some(h)) => Ok((w.into(), h.into())),
        _ => Err(Error::corrupt(
            Format::Gif,
            "truncated before the screen descriptor",
        )),
    }
}

/// The size of a BMP; a negative height (a top-down bitmap) counts by its magnitude.
pub(super) fn bmp_dimensions(data: &[u8]) -> Result<(u32, u32), Error> {
    let corrupt = |detail: &str| Error::corrupt(Format::Bmp, detail);
    let header_size = le_u32(data, 14).ok_or_else(|| corrupt("truncated file header"))?;
    if header_size == 12 {
        return match (le_u16(data, 18), le_u16(data, 20)) {
            (Some(w), Some(h)) => Ok((w.into(), h.into())),
            _ => Err(corrupt("truncated BITMAPCOREHEADER")),
        };
    }
    let (Some(w), Some(h)) = (le_u32(data, 18), le_u32(data, 22)) else {
        return Err(corrupt("truncated BITMAPINFOHEADER"));
    };
    let width = i32::from_le_bytes(w.to_le_bytes());
    let height = i32::from_le_bytes(h.to_le_bytes());
    let width = u32::try_from(width).map_err(|_| corrupt("negative width"))?;
    Ok((width, height.unsigned_abs()))
}

fn le_u16(data: &[u8], at: usize) -> Option<u16> {
    let bytes = data.get(at..at.checked_add(2)?)?;
    Some(u16::from_le_bytes(bytes.try_into().ok()?))
}

fn le_u24(data: &[u8], at: usize) -> Option<u32> {
    let bytes = data.get(at..at.checked_add(3)?)?;
    Some(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], 0]))
}

fn le_u32(data: &[u8], at: usize) -> Option<u32> {
    let bytes = data.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes(bytes.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn riff(chunk: &[u8], body: &[u8]) -> Vec<u8> {
        let mut data = b"RIFF\0\0\0\0WEBP".to_vec();
        data.extend_from_slice(chunk);
        data.extend_from_slice(&u32::try_from(body.len()).unwrap().to_le_bytes());
        data.extend_from_slice(body);
        data
    }

    #[test]
    fn webp_sizes_from_each_chunk_kind() {
        let vp8x = riff(b"VP8X", &[0x10, 0, 0, 0, 0xFF, 0xFF, 0, 0x2B, 1, 0]);
        assert_eq!(webp_dimensions(&vp8x), Ok((65536, 300)));
        let vp8 = riff(
            b"VP8 ",
            &[0, 0, 0, 0x9D, 0x01, 0x2A, 0x40, 0x01, 0xF0, 0xC0],
        );
        assert_eq!(webp_dimensions(&vp8), Ok((320, 240)));
        // width - 1 = 99 and height - 1 = 49, packed as 14 + 14 bits.
        let bits: u32 = 99 + 49 * (1 << 14);
        let mut body = vec![0x2F];
        body.extend_from_slice(&bits.to_le_bytes());
        assert_eq!(webp_dimensions(&riff(b"VP8L", &body)), Ok((100, 50)));
        assert!(is_webp(&vp8));
        assert!(!is_webp(b"RIFF\0\0\0\0WAVE"));
    }

    #[test]
    fn truncated_webp_is_corrupt() {
        let vp8x = riff(b"VP8X", &[0x10, 0, 0, 0, 0xFF, 0xFF, 0, 0x2B, 1, 0]);
        for cut in [12, 16, 24, 28] {
            assert!(
                matches!(webp_dimensions(&vp8x[..cut]), Err(Error::Corrupt { .. })),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn gif_and_bmp_sizes() {
        let gif = b"GIF89a\x40\x01\xF0\x00\xF7\x00\x00";
        assert!(is_gif(gif));
        assert_eq!(gif_dimensions(gif), Ok((320, 240)));
        assert!(gif_dimensions(&gif[..8]).is_err());

        let mut bmp = b"BM".to_vec();
        bmp.extend_from_slice(&[0; 12]);
        bmp.extend_from_slice(&40u32.to_le_bytes());
        bmp.extend_from_slice(&640i32.to_le_bytes());
        bmp.extend_from_slice(&(-480i32).to_le_bytes());
        assert!(is_bmp(&bmp));
        assert_eq!(bmp_dimensions(&bmp), Ok((640, 480)));
        assert!(!is_bmp(b"BMW is a car, not a bitmap"));
    }
}
