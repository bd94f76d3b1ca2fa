//! JPEG markers: finding the next one ([`next_marker`], for the header walk and
//! the decoder alike) and the one walk of the segments up to the first scan
//! ([`Markers`]).

use crate::error::Error;
use crate::image::Format;

/// SOI followed by the first byte of the next marker.
pub(crate) const MAGIC: &[u8] = b"\xFF\xD8\xFF";

const SOS: u8 = 0xDA;
const APP1: u8 = 0xE1;
/// What starts an APP1 segment that holds EXIF (a TIFF structure follows).
const EXIF_ID: &[u8] = b"Exif\0\0";
const EOI: u8 = 0xD9;

/// Metadata segments beyond this many bytes in all are dropped before decoding.
const METADATA_BUDGET: usize = 256 * 1024;

/// A JPEG's marker segments up to the first scan, walked once per image: what
/// the header, the completeness check, the orientation and the metadata trimming
/// all read. Only segment lengths, the frame header (`SOFn`) and the position of
/// the EXIF block are read; entropy-coded data is never parsed here.
#[derive(Debug)]
pub(crate) struct Markers {
    /// Width from the first frame header.
    width: u32,
    /// Height from the first frame header (0: deferred to a DNL marker).
    height: u32,
    /// Offset of the first SOS marker, if the data reaches it.
    scan: Option<usize>,
    /// The TIFF payload of the first APP1 `Exif` segment, as a byte range.
    exif: Option<(usize, usize)>,
    /// APP1..APP13, APP15 and COM segments (marker included), as byte ranges.
    metadata: Vec<(usize, usize)>,
}

impl Markers {
    /// Walks the marker segments from after SOI to the first SOS.
    ///
    /// # Errors
    ///
    /// [`Error::Corrupt`] if the data ends or goes wrong before a frame header,
    /// or holds an end-of-image marker or a scan before one.
    pub(crate) fn parse(data: &[u8]) -> Result<Self, Error> {
        let corrupt = |detail: &str| Error::corrupt(Format::Jpeg, detail);
        let truncated = || corrupt("truncated before the frame header");
        let mut size: Option<(u32, u32)> = None;
        let mut exif = None;
        let mut metadata = Vec::new();
        let mut pos = 2;
        let scan = loop {
            // Fill bytes, stuffed zeros and stray bytes are skipped, as libjpeg
            // does (with a warning).
            let Some((marker, after)) = next_marker(data, pos) else {
                break None;
            };
            pos = after;
            match marker {
                // TEM, RSTn and a repeated SOI carry no length.
                0x01 | 0xD0..=0xD8 => continue,
                EOI => return Err(corrupt("end-of-image marker before any scan")),
                SOS if size.is_none() => return Err(corrupt("scan data before the frame header")),
                SOS => break Some(pos - 2),
                _ => {}
            }
            let Some(length) = be16(data, pos) else {
                break None;
            };
            if length < 2 {
                return Err(corrupt("invalid marker segment length"));
            }
            let end = pos + length;
            if is_frame_header(marker) && size.is_none() {
                // Precision (1), height (2), width (2), component count (1).
                let body = data.get(pos + 2..end).ok_or_else(truncated)?;
                let [_, h0, h1, w0, w1, _, ..] = *body else {
                    return Err(corrupt("frame header too short"));
                };
                size = Some((be_u16(w0, w1).into(), be_u16(h0, h1).into()));
            } else if marker == APP1 && exif.is_none() {
                let body = data.get(pos + 2..end).unwrap_or_default();
                if body.starts_with(EXIF_ID) {
                    exif = Some((pos + 2 + EXIF_ID.len(), end));
                }
            }
            if matches!(marker, 0xE1..=0xED | 0xEF | 0xFE) {
                metadata.push((pos - 2, end));
            }
            pos = end;
        };
        let (width, height) = size.ok_or_else(truncated)?;
        Ok(Self {
            width,
            height,
            scan,
            exif,
            metadata,
        })
    }

    /// Width and height from the first frame header.
    ///
    /// # Errors
    ///
    /// [`Error::UnsupportedFeature`] for a height deferred to a DNL marker.
    pub(crate) fn dimensions(&self) -> Result<(u32, u32), Error> {
        if self.height == 0 {
            return Err(Error::UnsupportedFeature {
                format: Format::Jpeg,
                detail: "height defined by a DNL marker".into(),
            });
        }
        Ok((self.width, self.height))
    }

    /// Checks that an end-of-image marker follows the first scan of `data`.
    ///
    /// A truncated file has none: inside entropy-coded data every 0xFF byte is
    /// stuffed or starts a restart marker, so `FF D9` after SOS is a real EOI.
    /// The decoder itself runs lenient (like libjpeg) and would pad a truncated
    /// scan with grey instead of failing.
    ///
    /// # Errors
    ///
    /// [`Error::Corrupt`] if the data stops before the scan or before EOI.
    pub(crate) fn check_complete(&self, data: &[u8]) -> Result<(), Error> {
        let scan = self
            .scan
            .ok_or_else(|| Error::corrupt(Format::Jpeg, "truncated before the first scan"))?;
        let tail = data.get(scan..).unwrap_or_default();
        if tail.windows(2).rev().any(|pair| pair == [0xFF, EOI]) {
            Ok(())
        } else {
            Err(Error::corrupt(
                Format::Jpeg,
                "truncated: no end-of-image marker after the scan data",
            ))
        }
    }

    /// The EXIF orientation (1..=8) from the first APP1 `Exif` segment; 1 if there
    /// is none or it is unreadable (a broken EXIF block never fails a decode).
    pub(crate) fn orientation(&self, data: &[u8]) -> u8 {
        self.exif
            .and_then(|(start, end)| data.get(start..end))
            .and_then(image::metadata::Orientation::from_exif_chunk)
            .map_or(1, image::metadata::Orientation::to_exif)
    }

    /// A copy of `data` without its APP1..APP13, APP15 and COM segments, if they
    /// exceed [`METADATA_BUDGET`]; `None` (decode `data` as it is) otherwise.
    ///
    /// APP0 (JFIF) and APP14 (Adobe: the colour transform) stay, so the pixels
    /// decode the same. Only the part before the first scan is examined.
    pub(crate) fn without_bulky_metadata(&self, data: &[u8]) -> Option<Vec<u8>> {
        let total: usize = self.metadata.iter().map(|(start, end)| end - start).sum();
        if total <= METADATA_BUDGET || self.scan.is_none() {
            return None;
        }
        let mut lean = Vec::with_capacity(data.len().saturating_sub(total));
        let mut kept = 0;
        for &(start, end) in &self.metadata {
            lean.extend_from_slice(data.get(kept..start)?);
            kept = end;
        }
        lean.extend_from_slice(data.get(kept..)?);
        Some(lean)
    }
}

/// SOF0..SOF15, less DHT (C4), JPG (C8) and DAC (CC), which share the range.
fn is_frame_header(marker: u8) -> bool {
    matches!(marker, 0xC0..=0xCF) && !matches!(marker, 0xC4 | 0xC8 | 0xCC)
}

fn be_u16(hi: u8, lo: u8) -> u16 {
    u16::from_be_bytes([hi, lo])
}

/// Finds the next marker at or after `pos`, skipping any other bytes, stuffed
/// 0xFF00 pairs and fill bytes: returns its code and the position just after it.
#[inline]
pub(crate) fn next_marker(data: &[u8], mut pos: usize) -> Option<(u8, usize)> {
    loop {
        let rest = data.get(pos..)?;
        // Word-at-a-time search for 0xFF.
        let mut off = 0;
        let mut chunks = rest.chunks_exact(8);
        for chunk in chunks.by_ref() {
            let word = u64::from_le_bytes(<[u8; 8]>::try_from(chunk).ok()?);
            let inv = !word;
            if inv.wrapping_sub(0x0101_0101_0101_0101) & !inv & 0x8080_8080_8080_8080 != 0 {
                break;
            }
            off += 8;
        }
        let ff = off + rest.get(off..)?.iter().position(|&b| b == 0xFF)?;
        let mut p = pos + ff + 1;
        while data.get(p) == Some(&0xFF) {
            p += 1;
        }
        let code = *data.get(p)?;
        if code != 0 {
            return Some((code, p + 1));
        }
        pos = p + 1;
    }
}

/// Big-endian u16 at `pos`.
#[inline]
pub(crate) fn be16(data: &[u8], pos: usize) -> Option<usize> {
    let b = data.get(pos..pos.checked_add(2)?)?;
    Some(usize::from(b[0]) << 8 | usize::from(b[1]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dimensions(data: &[u8]) -> Result<(u32, u32), Error> {
        Markers::parse(data)?.dimensions()
    }

    fn check_complete(data: &[u8]) -> Result<(), Error> {
        Markers::parse(data)?.check_complete(data)
    }

    /// SOI, an APP0 segment, SOF0 for `width`x`height`, SOS, two data bytes and EOI.
    fn minimal(width: u16, height: u16) -> Vec<u8> {
        let mut data = vec![0xFF, 0xD8];
        data.extend_from_slice(&[0xFF, 0xE0, 0x00, 0x06, b'J', b'F', b'I', b'F']);
        data.extend_from_slice(&[0xFF, 0xC0, 0x00, 0x0B, 8]);
        data.extend_from_slice(&height.to_be_bytes());
        data.extend_from_slice(&width.to_be_bytes());
        data.extend_from_slice(&[1, 1, 0x11, 0]);
        data.extend_from_slice(&[0xFF, SOS, 0x00, 0x08, 1, 1, 0, 0, 63, 0]);
        data.extend_from_slice(&[0x12, 0xFF, 0x00, 0x34, 0xFF, EOI]);
        data
    }

    #[test]
    fn reads_frame_header() {
        assert_eq!(dimensions(&minimal(4000, 3000)), Ok((4000, 3000)));
        assert_eq!(dimensions(&minimal(65535, 1)), Ok((65535, 1)));
    }

    #[test]
    fn skips_fill_bytes_and_stray_bytes() {
        let mut data = minimal(10, 20);
        data.splice(2..2, [0xFF, 0xFF, 0x00, 0x42]);
        assert_eq!(dimensions(&data), Ok((10, 20)));
    }

    #[test]
    fn truncated_header_is_corrupt() {
        let data = minimal(10, 20);
        let sof_end = 2 + 8 + 13;
        for cut in 3..sof_end {
            assert!(
                matches!(dimensions(&data[..cut]), Err(Error::Corrupt { .. })),
                "cut at {cut}"
            );
        }
        assert_eq!(dimensions(&data[..sof_end]), Ok((10, 20)));
    }

    #[test]
    fn scan_before_frame_is_corrupt() {
        let data = [0xFF, 0xD8, 0xFF, SOS, 0, 2, 0xFF, EOI];
        assert!(matches!(dimensions(&data), Err(Error::Corrupt { .. })));
    }

    #[test]
    fn zero_height_is_unsupported() {
        assert!(matches!(
            dimensions(&minimal(10, 0)),
            Err(Error::UnsupportedFeature { .. })
        ));
    }

    #[test]
    fn complete_needs_eoi_after_scan() {
        let data = minimal(10, 20);
        assert_eq!(check_complete(&data), Ok(()));
        let mut trailing = data.clone();
        trailing.extend_from_slice(&[0; 64]);
        assert_eq!(check_complete(&trailing), Ok(()));
        for cut in [data.len() - 1, data.len() - 4, 30] {
            assert!(
                matches!(check_complete(&data[..cut]), Err(Error::Corrupt { .. })),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn next_marker_skips_stuffing_and_fill() {
        let data = [0x12, 0xFF, 0x00, 0x34, 0xFF, 0xFF, 0xD0, 0x56];
        assert_eq!(next_marker(&data, 0), Some((0xD0, 7)));
        assert_eq!(next_marker(&data, 7), None);
        let mut long = vec![0u8; 100];
        long.extend_from_slice(&[0xFF, 0xD9]);
        assert_eq!(next_marker(&long, 3), Some((0xD9, 102)));
    }
}
