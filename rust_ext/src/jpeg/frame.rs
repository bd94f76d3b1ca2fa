//! The decoder's state across markers: the marker loop over the whole file, and
//! the frame, Huffman and quantisation segments it reads.

use super::huffman::build_huffman;
use super::huffman::Huffman;
use super::markers::{be16, next_marker};
use super::Scaled;

/// One frame component.
pub(super) struct Component {
    /// Component identifier from the frame header.
    pub(super) id: u8,
    /// Horizontal sampling factor (1 or 2).
    pub(super) h: usize,
    /// Vertical sampling factor (1 or 2).
    pub(super) v: usize,
    /// Quantisation table selector.
    pub(super) tq: usize,
    /// Quantisation table (zigzag order), latched when the component's first scan starts.
    pub(super) q: Option<[i32; 64]>,
    /// Blocks per row that hold image data.
    pub(super) bw: usize,
    /// Block rows that hold image data.
    pub(super) bh: usize,
    /// Blocks per row including MCU padding.
    pub(super) stride: usize,
    /// Samples per block across and down: (1, 1) at 1/8; otherwise those of the
    /// 2-point inverse DCT ((1, 2) or (2, 1)) or, for chroma subsampled along the
    /// axis reduced by 4 only, the 4-point one ((1, 4) or (4, 1)).
    pub(super) per: (usize, usize),
    /// At 1/8, one DC coefficient per block; otherwise a plane of final samples,
    /// `per` of them per block, `stride` blocks per row.
    pub(super) coefs: Vec<i16>,
    /// A sequential scan or a progressive DC first scan covered this component.
    pub(super) seen: bool,
}

/// Frame header.
pub(super) struct Frame {
    /// Image width in pixels.
    pub(super) width: usize,
    /// Image height in pixels.
    pub(super) height: usize,
    /// SOF2.
    pub(super) progressive: bool,
    /// Largest horizontal sampling factor.
    pub(super) hmax: usize,
    /// Largest vertical sampling factor.
    pub(super) vmax: usize,
    /// MCUs per row in interleaved scans.
    pub(super) mcus_wide: usize,
    /// MCU rows in interleaved scans.
    pub(super) mcus_high: usize,
    /// Samples per luma block across and down: (1, 1), (1, 2) or (2, 1).
    pub(super) per: (usize, usize),
    /// The components (1 or 3).
    pub(super) comps: Vec<Component>,
}

/// One block position within an MCU of a scan.
#[derive(Clone, Copy, Default)]
pub(super) struct BlockSlot {
    /// Index in `Frame::comps`.
    pub(super) comp: usize,
    /// Index in the scan's DC predictors.
    pub(super) pred: usize,
    /// Block offset within the MCU (x, y).
    pub(super) dx: usize,
    /// See `dx`.
    pub(super) dy: usize,
    /// Blocks per MCU of this component in this scan (x, y).
    pub(super) mw: usize,
    /// See `mw`.
    pub(super) mh: usize,
    /// DC table selector.
    pub(super) td: usize,
    /// AC table selector.
    pub(super) ta: usize,
}

/// Decoder state across markers.
pub(super) struct Decoder<'a> {
    /// The whole file.
    pub(super) data: &'a [u8],
    /// Quantisation tables, zigzag order.
    pub(super) q: [Option<[i32; 64]>; 4],
    /// Samples per block across and down.
    pub(super) per: (usize, usize),
    /// DC Huffman tables.
    pub(super) dc: [Option<Box<Huffman>>; 4],
    /// AC Huffman tables.
    pub(super) ac: [Option<Box<Huffman>>; 4],
    /// Restart interval in MCUs (0: none).
    pub(super) restart: usize,
    /// Saw a JFIF APP0 segment.
    pub(super) jfif: bool,
    /// Adobe APP14 transform flag, if that segment was seen.
    pub(super) adobe: Option<u8>,
    /// The frame, once its SOF was read.
    pub(super) frame: Option<Frame>,
}

/// Decodes `data` at 1/`reduction_x` across and 1/`reduction_y` down.
/// (8, 8): from the DC coefficients only, baseline and progressive; (8, 4) and (4, 8):
/// baseline only; anything else: None.
/// Also returns None for anything it does not handle or cannot decode cleanly (arithmetic coding,
/// 12-bit, lossless, CMYK/YCCK or other than 1 or 3 components, unusual sampling, corrupt or
/// truncated data...): the caller then falls back to libjpeg-turbo, which also reports errors.
/// Never panics, on any input.
pub(crate) fn decode_scaled(data: &[u8], reduction_x: u32, reduction_y: u32) -> Option<Scaled> {
    let per = match (reduction_x, reduction_y) {
        (8, 8) => (1, 1),
        (8, 4) => (1, 2),
        (4, 8) => (2, 1),
        _ => return None,
    };
    if data.get(..2)? != [0xFF, 0xD8] {
        return None;
    }
    let mut d = Decoder {
        data,
        q: [None; 4],
        per,
        dc: [None, None, None, None],
        ac: [None, None, None, None],
        restart: 0,
        jfif: false,
        adobe: None,
        frame: None,
    };
    let mut pos = 2;
    // Running out of data without EOI is fine if every component got its DCs.
    while let Some((code, after)) = next_marker(data, pos) {
        pos = after;
        match code {
            0xD9 => break,
            // RSTn outside a scan (also inside skipped progressive AC scans), TEM.
            0xD0..=0xD7 | 0x01 => {}
            0xD8 => return None,
            _ => {
                let len = be16(data, pos)?;
                let seg = data.get(pos + 2..pos.checked_add(len)?)?;
                if len < 2 {
                    return None;
                }
                pos += len;
                match code {
                    0xC0..=0xC2 => d.read_sof(seg, code == 0xC2)?,
                    0xC4 => d.read_dht(seg)?,
                    0xDB => d.read_dqt(seg)?,
                    0xDD => d.restart = be16(seg, 0)?,
                    0xDA => pos = d.read_sos(seg, pos)?,
                    0xE0 => d.jfif |= seg.len() >= 14 && seg.starts_with(b"JFIF\0"),
                    0xEE => {
                        if seg.len() >= 12 && seg.starts_with(b"Adobe") {
                            d.adobe = Some(seg[11]);
                        }
                    }
                    // Other APPn, COM, DNL (height from the SOF must be non-zero anyway).
                    0xE1..=0xED | 0xEF | 0xFE | 0xDC => {}
                    // Other SOFs (lossless, hierarchical, arithmetic), DAC, DHP, EXP, JPGn...
                    _ => return None,
                }
            }
        }
    }
    d.finish()
}

impl Component {
    /// Parses one component of a SOF segment (id, sampling factors, table); its
    /// layout is set once the whole frame is known.
    fn parse(c: &[u8]) -> Option<Self> {
        let &[id, hv, tq] = c else {
            return None;
        };
        let (h, v, tq) = (usize::from(hv >> 4), usize::from(hv & 15), usize::from(tq));
        if !(1..=2).contains(&h) || !(1..=2).contains(&v) || tq > 3 {
            return None;
        }
        Some(Self {
            id,
            h,
            v,
            tq,
            q: None,
            bw: 0,
            bh: 0,
            stride: 0,
            per: (1, 1),
            coefs: Vec::new(),
            seen: false,
        })
    }
}

impl Decoder<'_> {
    /// Parses a SOF0/1/2 segment.
    pub(super) fn read_sof(&mut self, seg: &[u8], progressive: bool) -> Option<()> {
        if self.frame.is_some() || seg.first() != Some(&8) || (progressive && self.per != (1, 1)) {
            return None;
        }
        let height = be16(seg, 1)?;
        let width = be16(seg, 3)?;
        let nc = usize::from(*seg.get(5)?);
        if width == 0 || height == 0 || !(nc == 1 || nc == 3) || seg.len() < 6 + 3 * nc {
            return None;
        }
        let comps = seg
            .get(6..6 + 3 * nc)?
            .chunks_exact(3)
            .map(Component::parse);
        let mut comps = comps.collect::<Option<Vec<_>>>()?;
        let hmax = comps.iter().map(|c| c.h).max()?;
        let vmax = comps.iter().map(|c| c.v).max()?;
        // The first component (luma) must be the full-resolution one.
        if comps[0].h != hmax || comps[0].v != vmax {
            return None;
        }
        let mcus_wide = width.div_ceil(8 * hmax);
        let mcus_high = height.div_ceil(8 * vmax);
        for c in &mut comps {
            c.bw = (width * c.h).div_ceil(hmax).div_ceil(8);
            c.bh = (height * c.v).div_ceil(vmax).div_ceil(8);
            c.stride = mcus_wide * c.h;
            // As libjpeg at 1/4: 4x4 samples per 4:2:0 chroma block, 2x2 otherwise.
            c.per = match self.per {
                (1, 2) if c.v < vmax && c.h < hmax => (1, 4),
                (2, 1) if c.v < vmax && c.h < hmax => (4, 1),
                per => per,
            };
            let (px, py) = c.per;
            c.coefs = vec![0; (c.stride * px).checked_mul(mcus_high * c.v * py)?];
        }
        self.frame = Some(Frame {
            width,
            height,
            progressive,
            hmax,
            vmax,
            mcus_wide,
            mcus_high,
            per: self.per,
            comps,
        });
        Some(())
    }

    /// Parses a DHT segment (one or more tables).
    pub(super) fn read_dht(&mut self, mut seg: &[u8]) -> Option<()> {
        while let Some(&tc_th) = seg.first() {
            let counts = seg.get(1..17)?;
            let total: usize = counts.iter().map(|&c| usize::from(c)).sum();
            let symbols = seg.get(17..17 + total)?;
            if total > 256 {
                return None;
            }
            let (class, id) = (tc_th >> 4, usize::from(tc_th & 15));
            let table = build_huffman(counts, symbols)?;
            match class {
                0 if symbols.iter().all(|&s| s <= 15) => *self.dc.get_mut(id)? = Some(table),
                1 => *self.ac.get_mut(id)? = Some(table),
                _ => return None,
            }
            seg = seg.get(17 + total..)?;
        }
        Some(())
    }

    /// Parses a DQT segment, keeping each table's DC entry.
    pub(super) fn read_dqt(&mut self, mut seg: &[u8]) -> Option<()> {
        while let Some(&pq_tq) = seg.first() {
            let id = usize::from(pq_tq & 15);
            let wide = match pq_tq >> 4 {
                0 => false,
                1 => true,
                _ => return None,
            };
            let size = if wide { 129 } else { 65 };
            let mut q = [0; 64];
            for (i, v) in q.iter_mut().enumerate() {
                *v = if wide {
                    be16(seg, 1 + 2 * i)? as i32
                } else {
                    i32::from(*seg.get(1 + i)?)
                };
            }
            *self.q.get_mut(id)? = Some(q);
            seg = seg.get(size..)?;
        }
        Some(())
    }
}
