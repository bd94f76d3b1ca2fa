//! Reduced-size JPEG decoding that skips most of the entropy-coded data.
//!
//! At scale 1/8 each 8x8 block of a component becomes one sample, equal to its DC
//! coefficient dequantised and descaled exactly as libjpeg's 1x1 inverse DCT does
//! (`((dc * q0 + 4) >> 3) + 128`, clamped). So the AC coefficients are never needed:
//! sequential scans skip them with one table lookup per Huffman symbol (code length
//! plus magnitude bits dropped in one shift, no value computed), and progressive AC
//! scans are not entropy-decoded at all, only jumped over to the next marker.
//!
//! Anisotropic scales, 1/8 across and 1/4 down (or the reverse), are what libjpeg's
//! 1/4 decode (its 2x2 reduced inverse DCT) gives with each horizontal (vertical)
//! pair of samples averaged: the average cancels every odd horizontal (vertical)
//! frequency, leaving a 2-point inverse DCT of the first column (row) of
//! coefficients, of which it reads frequencies 0, 1, 3, 5 and 7. Sequential scans
//! take the values of the AC symbols up to the last of those and skip the rest as
//! at 1/8. Progressive files are not handled at these scales.
//!
//! Subsampled chroma (one sample or pair per chroma block) is brought to the luma
//! grid with a triangle ("fancy") upsample, then YCbCr is converted to RGB with
//! libjpeg's fixed-point tables (ITU-R BT.601, full range).
//!
//! Anything unusual (arithmetic coding, 12-bit, lossless, hierarchical, CMYK/YCCK,
//! 2 or 4 components, sampling factors other than 1 or 2, luma not the largest
//! sampled component, corrupt or truncated entropy data, bad tables...) returns
//! `None` so that the caller can fall back to libjpeg-turbo.

// Bit and sample arithmetic on values whose ranges are established by the parser:
// the casts below are all between small non-negative integers and machine words.
#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap,
    clippy::cast_lossless,
    clippy::inline_always
)]

/// 8-bit RGB pixels: ceil(w / `reduction_x`) x ceil(h / `reduction_y`), row-major, no padding.
pub(crate) struct Scaled {
    /// Width in pixels, `ceil(image width / reduction_x)`.
    pub(crate) width: u32,
    /// Height in pixels, `ceil(image height / reduction_y)`.
    pub(crate) height: u32,
    /// `width * height * 3` bytes, RGB.
    pub(crate) pixels: Vec<u8>,
}

/// Number of leading bits resolved by one Huffman table lookup.
const FAST_BITS: u32 = 11;
/// Entries in a Huffman lookup table.
const FAST_SIZE: usize = 1 << FAST_BITS;

/// A Huffman table prepared for decoding DC symbols and skipping AC symbols.
struct Huffman {
    /// Indexed by the next `FAST_BITS` bits of the stream. For codes of at most
    /// `FAST_BITS` bits: bits 0..5 the code length plus the number of magnitude bits
    /// that follow it (bits to drop to skip the symbol), 5..10 the code length,
    /// 10..16 how many coefficient positions the symbol advances when used as an AC
    /// symbol (run + 1; 16 for ZRL; 63 for EOB, which ends any block). Zero for
    /// longer codes (and unused ones).
    lut: [u16; FAST_SIZE],
    /// `maxcode[l]`: the largest code of length `l`, or -1 if none.
    maxcode: [i32; 17],
    /// `valoffset[l]`: index in `vals` of the first symbol of length `l`, minus its code.
    valoffset: [i32; 17],
    /// Symbols in code order.
    vals: [u8; 256],
    /// For AC symbols, indexed like `lut`: the entries of the one or two whole
    /// symbols (with their magnitude bits) those bits start with: the first in bits
    /// 0..16, the second (zero if none fits, or the first is an EOB) in 16..32, the
    /// bits both take in 32..40. Zero if not even the first fits.
    pair: [u64; FAST_SIZE],
}

/// AC advance of a run/size symbol (see `Huffman::lut`).
fn ac_advance(sym: u32) -> u32 {
    match (sym & 15, sym >> 4) {
        (0, 15) => 16,
        (0, _) => 63,
        (_, run) => run + 1,
    }
}

/// Builds a Huffman table from a DHT segment's 16 counts and its symbols.
fn build_huffman(counts: &[u8], symbols: &[u8]) -> Option<Box<Huffman>> {
    let mut h = Box::new(Huffman {
        lut: [0; FAST_SIZE],
        maxcode: [-1; 17],
        valoffset: [0; 17],
        vals: [0; 256],
        pair: [0; FAST_SIZE],
    });
    h.vals.get_mut(..symbols.len())?.copy_from_slice(symbols);
    let mut code: u32 = 0;
    let mut k: usize = 0;
    for (l, &count) in (1u32..=16).zip(counts) {
        let n = count as usize;
        *h.valoffset.get_mut(l as usize)? = k as i32 - code as i32;
        for _ in 0..n {
            if code >= (1 << l) {
                return None;
            }
            let sym = u32::from(*symbols.get(k)?);
            if l <= FAST_BITS {
                let entry = (l + (sym & 15)) | l << 5 | ac_advance(sym) << 10;
                let shift = FAST_BITS - l;
                let lo = (code << shift) as usize;
                let hi = ((code + 1) << shift) as usize;
                h.lut.get_mut(lo..hi)?.fill(entry as u16);
            }
            code += 1;
            k += 1;
        }
        if n > 0 {
            *h.maxcode.get_mut(l as usize)? = code as i32 - 1;
        }
        code <<= 1;
    }
    for idx in 0..FAST_SIZE {
        let e1 = u64::from(h.lut[idx]);
        let t1 = e1 & 31;
        if e1 == 0 || t1 > u64::from(FAST_BITS) {
            continue;
        }
        let rest = (idx << t1) & (FAST_SIZE - 1);
        let e2 = u64::from(h.lut[rest]);
        let t2 = e2 & 31;
        h.pair[idx] = if e1 >> 10 == 63 || e2 == 0 || t1 + t2 > u64::from(FAST_BITS) {
            e1 | t1 << 32
        } else {
            e1 | e2 << 16 | (t1 + t2) << 32
        };
    }
    Some(h)
}

/// Bit reader over entropy-coded data: 64-bit buffer, MSB first, byte unstuffing.
struct Bits<'a> {
    /// The whole file.
    data: &'a [u8],
    /// Next byte of `data` not yet in `buf`.
    pos: usize,
    /// Bits, left-aligned: the top `n` are valid (lower ones are the stream's next
    /// bits or zero).
    buf: u64,
    /// Number of valid bits in `buf`.
    n: u32,
    /// Zero bytes appended after reaching a marker or the end of the data.
    fake: u32,
    /// A marker (or the end of the data) was reached: only zeros follow.
    at_marker: bool,
}

impl<'a> Bits<'a> {
    /// Starts reading at `pos`.
    fn new(data: &'a [u8], pos: usize) -> Self {
        Self {
            data,
            pos,
            buf: 0,
            n: 0,
            fake: 0,
            at_marker: false,
        }
    }

    /// Guarantees at least 32 valid bits.
    #[inline(always)]
    fn ensure(&mut self) {
        if self.n < 32 {
            self.refill();
        }
    }

    /// Tops the buffer up to at least 56 valid bits; fast path (branch-free but for
    /// the 0xFF test) when the next 8 bytes hold no 0xFF.
    #[inline(always)]
    fn refill(&mut self) {
        if let Some(chunk) = self.data.get(self.pos..self.pos.wrapping_add(8)) {
            if let Ok(bytes) = <[u8; 8]>::try_from(chunk) {
                let word = u64::from_be_bytes(bytes);
                let inv = !word;
                // Non-zero iff some byte of `word` is 0xFF.
                let has_ff = inv.wrapping_sub(0x0101_0101_0101_0101) & !inv & 0x8080_8080_8080_8080;
                if has_ff == 0 {
                    // `n` is at most 63 here; bits of a partly taken byte are the
                    // stream's own and are or-ed in again identically later.
                    self.buf |= word >> (self.n & 63);
                    self.pos += ((63 - self.n) >> 3) as usize;
                    self.n |= 0b11_1000;
                    return;
                }
            }
        }
        let (pos, buf, n, fake, at_marker) = refill_slow(
            self.data,
            self.pos,
            self.buf,
            self.n,
            self.fake,
            self.at_marker,
        );
        self.pos = pos;
        self.buf = buf;
        self.n = n;
        self.fake = fake;
        self.at_marker = at_marker;
    }

    /// True if bits past the end of the segment (the zeros padded in) were consumed.
    fn overread(&self) -> bool {
        u64::from(self.fake) * 8 > u64::from(self.n)
    }

    /// Drops `k` (at most 32) bits; requires `ensure` before.
    #[inline(always)]
    fn consume(&mut self, k: u32) {
        self.buf <<= k;
        self.n = self.n.saturating_sub(k);
    }

    /// Reads a DC difference: category symbol, then its magnitude bits.
    #[inline(always)]
    fn dc_diff(&mut self, h: &Huffman) -> Option<i32> {
        self.ensure();
        let e = u32::from(h.lut[(self.buf >> (64 - FAST_BITS)) as usize]);
        let (len, s) = if e != 0 {
            let len = (e >> 5) & 31;
            (len, (e & 31) - len)
        } else {
            let (sym, len) = slow_symbol(h, self.buf)?;
            (len, sym & 15)
        };
        self.consume(len);
        if s == 0 {
            return Some(0);
        }
        let v = (self.buf >> (64 - s)) as i32;
        self.consume(s);
        // HUFF_EXTEND: values below 2^(s-1) are negative.
        Some(if v < 1 << (s - 1) {
            v - (1 << s) + 1
        } else {
            v
        })
    }

    /// The `Huffman::lut`-style entry of an AC symbol with a code longer than
    /// `FAST_BITS` bits, which it leaves at the top of the buffer.
    #[inline(always)]
    fn long_entry(&mut self, h: &Huffman) -> Option<u32> {
        self.ensure();
        let (sym, len) = slow_symbol(h, self.buf)?;
        Some((len + (sym & 15)) | len << 5 | ac_advance(sym) << 10)
    }

    /// Skips one AC symbol whose entry is `e`, moving `k` on; if `RECORD`, first
    /// notes the entry and the bits it starts with (see `Record`).
    #[inline(always)]
    fn step<const RECORD: bool>(&mut self, e: u32, k: &mut u32, rec: &mut Record) {
        *k += e >> 10;
        if RECORD {
            rec.0[(*k & 127) as usize] = (self.buf & !0xFFFF) | u64::from(e & 0x3FF);
        }
        self.consume(e & 31);
    }

    /// Skips the AC symbols of a sequential block from position `k` until
    /// position 64 is reached, recording them if `RECORD`.
    #[inline(always)]
    fn skip_ac<const RECORD: bool>(
        &mut self,
        h: &Huffman,
        mut k: u32,
        rec: &mut Record,
    ) -> Option<()> {
        loop {
            // At least 56 bits: room for three steps, as a single-symbol step (up to
            // 16 + 15 bits) is followed by `ensure` and pair steps take at most
            // FAST_BITS bits.
            self.refill();
            for _ in 0..3 {
                let p = h.pair[(self.buf >> (64 - FAST_BITS)) as usize];
                if p == 0 {
                    let mut e = u32::from(h.lut[(self.buf >> (64 - FAST_BITS)) as usize]);
                    if e == 0 {
                        e = self.long_entry(h)?;
                    }
                    self.step::<RECORD>(e, &mut k, rec);
                    // That took up to 31 bits: at least 32 for the next step.
                    self.ensure();
                } else {
                    let e1 = (p & 0xFFFF) as u32;
                    let e2 = ((p >> 16) & 0xFFFF) as u32;
                    let k1 = k + (e1 >> 10);
                    let k2 = k1 + (e2 >> 10);
                    if RECORD {
                        // The second first: without one, the first overwrites it.
                        let top = self.buf & !0xFFFF;
                        rec.0[(k2 & 127) as usize] =
                            top | u64::from(e2 & 0x3FF) | u64::from(e1 & 31) << 10;
                        rec.0[(k1 & 127) as usize] = top | u64::from(e1 & 0x3FF);
                    }
                    // A second symbol after the block's last position is not the block's.
                    let (taken, next) = if k1 >= 64 {
                        (e1 & 31, k1)
                    } else {
                        ((p >> 32) as u32, k2)
                    };
                    self.consume(taken);
                    k = next;
                }
                if k >= 64 {
                    return Some(());
                }
            }
        }
    }

    /// Handles a restart marker between restart intervals: it must be `RST<expected>`.
    #[inline(always)]
    fn restart(&mut self, expected: u8) -> Option<()> {
        if self.overread() {
            return None;
        }
        let (code, after) = next_marker(self.data, self.pos)?;
        if code != 0xD0 + expected {
            return None;
        }
        *self = Bits::new(self.data, after);
        Some(())
    }
}

/// The AC symbols of a block as `Bits::skip_ac` met them, by zigzag position plus
/// one (slots past 64 take ZRL/EOB ends past the block and corrupt runs): the bit
/// buffer with the symbol's code at the top, or after as many bits as bits 10..16
/// say, its lowest 16 bits (never part of a symbol) replaced by those bits and by
/// bits 0..10 of the symbol's `Huffman::lut`-style entry.
struct Record([u64; 128]);

impl Record {
    /// The value of the coefficient at zigzag position `z` (`z` < 127), if its slot
    /// was zeroed before the block; ZRL and EOB entries give zero, as do the
    /// positions they cover.
    fn value(&self, z: usize) -> i32 {
        let slot = self.0[z + 1];
        let entry = (slot & 0xFFFF) as u32;
        let len = (entry >> 5) & 31;
        let size = (entry & 31).wrapping_sub(len) & 31;
        let magnitude = slot << ((entry >> 10) + len);
        let v = ((magnitude >> 1) >> (63 - size)) as i32;
        // HUFF_EXTEND: values below 2^(size-1) (top bit clear) are negative.
        v - ((((magnitude >> 63) as i32) ^ 1) * ((1 << size) - 1))
    }
}

/// Byte-at-a-time refill handling 0xFF00 stuffing, markers and the end of data.
/// Takes and returns the reader's state by value so that the caller's stays in registers.
#[cold]
#[inline(never)]
fn refill_slow(
    data: &[u8],
    mut pos: usize,
    mut buf: u64,
    mut n: u32,
    mut fake: u32,
    mut at_marker: bool,
) -> (usize, u64, u32, u32, bool) {
    buf &= if n == 0 { 0 } else { u64::MAX << (64 - n) };
    while n < 56 {
        let byte = if at_marker {
            None
        } else {
            match data.get(pos) {
                Some(&0xFF) => {
                    if data.get(pos + 1) == Some(&0) {
                        pos += 2;
                        Some(0xFF)
                    } else {
                        None
                    }
                }
                Some(&b) => {
                    pos += 1;
                    Some(b)
                }
                None => None,
            }
        };
        let byte = byte.unwrap_or_else(|| {
            at_marker = true;
            fake = fake.saturating_add(1);
            0
        });
        buf |= u64::from(byte) << (56 - n);
        n += 8;
    }
    (pos, buf, n, fake, at_marker)
}

/// Decodes a code longer than `FAST_BITS` bits at the top of `buf`: (symbol, code length).
#[cold]
#[inline(never)]
fn slow_symbol(h: &Huffman, buf: u64) -> Option<(u32, u32)> {
    for l in (FAST_BITS + 1)..=16 {
        let code = (buf >> (64 - l)) as i32;
        if code <= *h.maxcode.get(l as usize)? {
            let idx = code + *h.valoffset.get(l as usize)?;
            let sym = *h.vals.get(usize::try_from(idx).ok()?)?;
            return Some((u32::from(sym), l));
        }
    }
    None
}

/// Finds the next marker at or after `pos`, skipping any other bytes, stuffed
/// 0xFF00 pairs and fill bytes: returns its code and the position just after it.
fn next_marker(data: &[u8], mut pos: usize) -> Option<(u8, usize)> {
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
fn be16(data: &[u8], pos: usize) -> Option<usize> {
    let b = data.get(pos..pos.checked_add(2)?)?;
    Some(usize::from(b[0]) << 8 | usize::from(b[1]))
}

/// One frame component.
struct Component {
    /// Component identifier from the frame header.
    id: u8,
    /// Horizontal sampling factor (1 or 2).
    h: usize,
    /// Vertical sampling factor (1 or 2).
    v: usize,
    /// Quantisation table selector.
    tq: usize,
    /// Quantisation table (zigzag order), latched when the component's first scan starts.
    q: Option<[i32; 64]>,
    /// Blocks per row that hold image data.
    bw: usize,
    /// Block rows that hold image data.
    bh: usize,
    /// Blocks per row including MCU padding.
    stride: usize,
    /// Samples per block across and down: (1, 1) at 1/8; otherwise those of the
    /// 2-point inverse DCT ((1, 2) or (2, 1)) or, for chroma subsampled along the
    /// axis reduced by 4 only, the 4-point one ((1, 4) or (4, 1)).
    per: (usize, usize),
    /// At 1/8, one DC coefficient per block; otherwise a plane of final samples,
    /// `per` of them per block, `stride` blocks per row.
    coefs: Vec<i16>,
    /// A sequential scan or a progressive DC first scan covered this component.
    seen: bool,
}

/// Frame header.
struct Frame {
    /// Image width in pixels.
    width: usize,
    /// Image height in pixels.
    height: usize,
    /// SOF2.
    progressive: bool,
    /// Largest horizontal sampling factor.
    hmax: usize,
    /// Largest vertical sampling factor.
    vmax: usize,
    /// MCUs per row in interleaved scans.
    mcus_wide: usize,
    /// MCU rows in interleaved scans.
    mcus_high: usize,
    /// Samples per luma block across and down: (1, 1), (1, 2) or (2, 1).
    per: (usize, usize),
    /// The components (1 or 3).
    comps: Vec<Component>,
}

/// How a scan's blocks are decoded.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Sequential: DC difference, then the AC coefficients skipped.
    Sequential,
    /// Sequential, two samples per block: from the first column (`true`, 1/8
    /// across and 1/4 down) or row of coefficients.
    Pairs(bool),
    /// Progressive DC first scan: DC difference shifted left by Al.
    DcFirst,
    /// Progressive DC refinement: one bit (bit Al) per block.
    DcRefine,
}

/// One block position within an MCU of a scan.
#[derive(Clone, Copy)]
struct BlockSlot {
    /// Index in `Frame::comps`.
    comp: usize,
    /// Index in the scan's DC predictors.
    pred: usize,
    /// Block offset within the MCU (x, y).
    dx: usize,
    /// See `dx`.
    dy: usize,
    /// Blocks per MCU of this component in this scan (x, y).
    mw: usize,
    /// See `mw`.
    mh: usize,
    /// DC table selector.
    td: usize,
    /// AC table selector.
    ta: usize,
}

/// Decoder state across markers.
struct Decoder<'a> {
    /// The whole file.
    data: &'a [u8],
    /// Quantisation tables, zigzag order.
    q: [Option<[i32; 64]>; 4],
    /// Samples per block across and down.
    per: (usize, usize),
    /// DC Huffman tables.
    dc: [Option<Box<Huffman>>; 4],
    /// AC Huffman tables.
    ac: [Option<Box<Huffman>>; 4],
    /// Restart interval in MCUs (0: none).
    restart: usize,
    /// Saw a JFIF APP0 segment.
    jfif: bool,
    /// Adobe APP14 transform flag, if that segment was seen.
    adobe: Option<u8>,
    /// The frame, once its SOF was read.
    frame: Option<Frame>,
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

impl Decoder<'_> {
    /// Parses a SOF0/1/2 segment.
    fn read_sof(&mut self, seg: &[u8], progressive: bool) -> Option<()> {
        if self.frame.is_some() || seg.first() != Some(&8) || (progressive && self.per != (1, 1)) {
            return None;
        }
        let height = be16(seg, 1)?;
        let width = be16(seg, 3)?;
        let nc = usize::from(*seg.get(5)?);
        if width == 0 || height == 0 || !(nc == 1 || nc == 3) || seg.len() < 6 + 3 * nc {
            return None;
        }
        let mut comps = Vec::with_capacity(nc);
        for c in seg.get(6..6 + 3 * nc)?.chunks_exact(3) {
            let (h, v, tq) = (
                usize::from(c[1] >> 4),
                usize::from(c[1] & 15),
                usize::from(c[2]),
            );
            if !(1..=2).contains(&h) || !(1..=2).contains(&v) || tq > 3 {
                return None;
            }
            comps.push(Component {
                id: c[0],
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
            });
        }
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
    fn read_dht(&mut self, mut seg: &[u8]) -> Option<()> {
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
    fn read_dqt(&mut self, mut seg: &[u8]) -> Option<()> {
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

    /// Parses a SOS segment and decodes (or skips) its entropy-coded data starting at
    /// `pos`; returns where to look for the next marker.
    fn read_sos(&mut self, seg: &[u8], pos: usize) -> Option<usize> {
        let frame = self.frame.as_mut()?;
        let ns = usize::from(*seg.first()?);
        if !(1..=4).contains(&ns) || seg.len() != 4 + 2 * ns {
            return None;
        }
        let ss = *seg.get(1 + 2 * ns)?;
        let se = *seg.get(2 + 2 * ns)?;
        let ahal = *seg.get(3 + 2 * ns)?;
        let (ah, al) = (ahal >> 4, ahal & 15);
        let mode = if frame.progressive {
            if ss != 0 {
                // AC scan: not needed at 1/8; the marker loop skips its data.
                return (ns == 1 && se >= ss && se <= 63 && al <= 13).then_some(pos);
            }
            if se != 0 || al > 13 {
                return None;
            }
            if ah == 0 {
                Mode::DcFirst
            } else if ah == al + 1 {
                Mode::DcRefine
            } else {
                return None;
            }
        } else {
            if ss != 0 || se != 63 || ahal != 0 {
                return None;
            }
            match frame.per {
                (1, 2) => Mode::Pairs(true),
                (2, 1) => Mode::Pairs(false),
                _ => Mode::Sequential,
            }
        };

        let mut slots = [BlockSlot {
            comp: 0,
            pred: 0,
            dx: 0,
            dy: 0,
            mw: 1,
            mh: 1,
            td: 0,
            ta: 0,
        }; 10];
        let mut nslots = 0;
        for (i, sel) in seg.get(1..1 + 2 * ns)?.chunks_exact(2).enumerate() {
            let ci = frame.comps.iter().position(|c| c.id == sel[0])?;
            let comp = frame.comps.get_mut(ci)?;
            let (td, ta) = (usize::from(sel[1] >> 4), usize::from(sel[1] & 15));
            let need_dc = mode != Mode::DcRefine;
            if (need_dc && self.dc.get(td)?.is_none())
                || (!frame.progressive && self.ac.get(ta)?.is_none())
            {
                return None;
            }
            if comp.q.is_none() {
                comp.q = Some((*self.q.get(comp.tq)?)?);
            }
            if mode != Mode::DcRefine {
                comp.seen = true;
            }
            let (mw, mh) = if ns == 1 { (1, 1) } else { (comp.h, comp.v) };
            for dy in 0..mh {
                for dx in 0..mw {
                    *slots.get_mut(nslots)? = BlockSlot {
                        comp: ci,
                        pred: i,
                        dx,
                        dy,
                        mw,
                        mh,
                        td,
                        ta,
                    };
                    nslots += 1;
                }
            }
        }
        let (mcus_x, mcus_y) = if ns == 1 {
            let c = frame.comps.get(slots[0].comp)?;
            (c.bw, c.bh)
        } else {
            (frame.mcus_wide, frame.mcus_high)
        };
        let scan = Scan {
            slots: slots.get(..nslots)?,
            mcus_x,
            mcus_y,
            restart: self.restart,
            al: u32::from(al),
        };
        let (data, comps) = (self.data, &mut frame.comps);
        match mode {
            Mode::Sequential => decode_scan::<0>(data, pos, comps, &scan, &self.dc, &self.ac),
            Mode::DcFirst => decode_scan::<1>(data, pos, comps, &scan, &self.dc, &self.ac),
            Mode::DcRefine => decode_scan::<2>(data, pos, comps, &scan, &self.dc, &self.ac),
            Mode::Pairs(true) => decode_scan::<3>(data, pos, comps, &scan, &self.dc, &self.ac),
            Mode::Pairs(false) => decode_scan::<4>(data, pos, comps, &scan, &self.dc, &self.ac),
        }
    }

    /// Converts the DC planes to RGB pixels.
    fn finish(self) -> Option<Scaled> {
        let frame = self.frame?;
        if !frame.comps.iter().all(|c| c.seen) {
            return None;
        }
        let (lpx, lpy) = frame.per;
        let ow = frame.width.div_ceil(8 / lpx);
        let oh = frame.height.div_ceil(8 / lpy);
        let mut planes = Vec::with_capacity(frame.comps.len());
        for c in &frame.comps {
            let q0 = c.q?[0];
            let (px, py) = c.per;
            let full = c.h == frame.hmax && c.v == frame.vmax;
            // Full-resolution planes are cropped to the output right away.
            let (sw, sh) = if full {
                (ow, oh)
            } else {
                (c.bw * px, c.bh * py)
            };
            let mut plane = Vec::with_capacity(sw * sh);
            for row in c.coefs.chunks_exact(c.stride * px).take(sh) {
                let row = row.get(..sw)?;
                if frame.per == (1, 1) {
                    plane.extend(row.iter().map(|&dc| {
                        let v = ((i32::from(dc) * q0 + 4) >> 3) + 128;
                        v.clamp(0, 255) as u8
                    }));
                } else {
                    plane.extend(row.iter().map(|&v| v as u8));
                }
            }
            if full {
                planes.push(plane);
            } else {
                // Along an axis reduced by 4, libjpeg upsamples the very samples
                // computed here (its "fancy" filter); along one reduced by 8 they
                // are block means.
                let filter = |up: bool, quarter: bool| match (up, quarter) {
                    (false, _) => Filter::Copy,
                    (true, false) => Filter::Means,
                    (true, true) => Filter::Fancy,
                };
                let fx = filter(frame.hmax * lpx > c.h * px, lpx == 2);
                let fy = filter(frame.vmax * lpy > c.v * py, lpy == 2);
                planes.push(upsample(&plane, sw, sh, fx, fy, ow, oh)?);
            }
        }
        let n = ow.checked_mul(oh)?;
        let mut pixels = Vec::with_capacity(n.checked_mul(3)?);
        match planes.as_slice() {
            [y] => {
                for &v in y.get(..n)? {
                    pixels.extend_from_slice(&[v, v, v]);
                }
            }
            [y, cb, cr] => {
                let (y, cb, cr) = (y.get(..n)?, cb.get(..n)?, cr.get(..n)?);
                let rgb = if self.jfif {
                    false
                } else if let Some(t) = self.adobe {
                    t == 0
                } else {
                    let ids: Vec<u8> = frame.comps.iter().map(|c| c.id).collect();
                    ids == [b'R', b'G', b'B']
                };
                if rgb {
                    for ((&r, &g), &b) in y.iter().zip(cb).zip(cr) {
                        pixels.extend_from_slice(&[r, g, b]);
                    }
                } else {
                    ycc_to_rgb(y, cb, cr, &mut pixels);
                }
            }
            _ => return None,
        }
        Some(Scaled {
            width: u32::try_from(ow).ok()?,
            height: u32::try_from(oh).ok()?,
            pixels,
        })
    }
}

/// A scan's geometry.
struct Scan<'s> {
    /// Blocks of one MCU.
    slots: &'s [BlockSlot],
    /// MCUs per row.
    mcus_x: usize,
    /// MCU rows.
    mcus_y: usize,
    /// Restart interval in MCUs (0: none).
    restart: usize,
    /// Successive approximation bit position.
    al: u32,
}

/// Decodes one scan's entropy-coded data. `MODE`: 0 sequential, 1 progressive DC
/// first, 2 progressive DC refinement.
fn decode_scan<const MODE: u8>(
    data: &[u8],
    pos: usize,
    comps: &mut [Component],
    scan: &Scan,
    dc: &[Option<Box<Huffman>>; 4],
    ac: &[Option<Box<Huffman>>; 4],
) -> Option<usize> {
    let mut bits = Bits::new(data, pos);
    // Zigzag positions of frequencies 1, 2, 3, 5, 6, 7 down the first column
    // (MODE 3) or along the first row (MODE 4).
    let pick: [usize; 6] = if MODE == 3 {
        [2, 3, 9, 20, 21, 35]
    } else {
        [1, 5, 6, 15, 27, 28]
    };
    // Resolve the tables once; for MODE 3 and 4 also the quantisation values of
    // frequencies 0 and `pick`, and the number of samples per block.
    let mut tables = [(None, None, [0i32; 7], 0); 10];
    for (t, s) in tables.iter_mut().zip(scan.slots) {
        let comp = comps.get(s.comp)?;
        let mut q = [0; 7];
        if MODE >= 3 {
            let table = comp.q.as_ref()?;
            q[0] = table[0];
            for (q, &p) in q[1..].iter_mut().zip(&pick) {
                *q = table[p];
            }
        }
        let n = comp.per.0.max(comp.per.1);
        *t = (dc.get(s.td)?.as_deref(), ac.get(s.ta)?.as_deref(), q, n);
    }
    let mut preds = [0i32; 4];
    let mut rec = Record([0; 128]);
    let mut todo = scan.restart;
    let mut next_rst = 0u8;
    for my in 0..scan.mcus_y {
        for mx in 0..scan.mcus_x {
            if scan.restart != 0 {
                if todo == 0 {
                    bits.restart(next_rst)?;
                    next_rst = (next_rst + 1) & 7;
                    preds = [0; 4];
                    todo = scan.restart;
                }
                todo -= 1;
            }
            for (s, &(dct, act, q, n)) in scan.slots.iter().zip(&tables) {
                let comp = comps.get_mut(s.comp)?;
                let (bx, by) = (mx * s.mw + s.dx, my * s.mh + s.dy);
                let pred = preds.get_mut(s.pred)?;
                if MODE >= 3 {
                    *pred = pred.wrapping_add(bits.dc_diff(dct?)?);
                    let (first, step) = if MODE == 3 {
                        (by * n * comp.stride + bx, comp.stride)
                    } else {
                        (by * n * comp.stride + bx * n, 1)
                    };
                    let out = comp.coefs.get_mut(first..)?;
                    // Dequantised as libjpeg-turbo's SSE2 code does it, in 16 bits.
                    let x0 = i32::from(pred.wrapping_mul(q[0]) as i16);
                    let x = |rec: &Record, i: usize| {
                        i32::from(rec.value(pick[i]).wrapping_mul(q[i + 1]) as i16)
                    };
                    if n == 2 {
                        for i in [0, 2, 3, 5] {
                            rec.0[pick[i] + 1] = 0;
                        }
                        bits.skip_ac::<true>(act?, 1, &mut rec)?;
                        let x = |i| x(&rec, i);
                        let [a, b] = idct2(x0, [x(0), x(2), x(3), x(5)]);
                        *out.first_mut()? = a;
                        *out.get_mut(step)? = b;
                    } else {
                        for p in pick {
                            rec.0[p + 1] = 0;
                        }
                        bits.skip_ac::<true>(act?, 1, &mut rec)?;
                        let x = |i| x(&rec, i);
                        let v = idct4(x0, [x(0), x(1), x(2), x(3), x(4), x(5)]);
                        for (i, v) in v.into_iter().enumerate() {
                            *out.get_mut(i * step)? = v;
                        }
                    }
                    continue;
                }
                let coef = comp.coefs.get_mut(by * comp.stride + bx)?;
                match MODE {
                    0 => {
                        *pred = pred.wrapping_add(bits.dc_diff(dct?)?);
                        *coef = *pred as i16;
                        bits.skip_ac::<false>(act?, 1, &mut rec)?;
                    }
                    1 => {
                        *pred = pred.wrapping_add(bits.dc_diff(dct?)?);
                        *coef = pred.wrapping_shl(scan.al) as i16;
                    }
                    _ => {
                        bits.ensure();
                        if bits.buf >> 63 != 0 {
                            *coef |= 1 << scan.al;
                        }
                        bits.consume(1);
                    }
                }
            }
        }
        if bits.overread() {
            return None;
        }
    }
    Some(bits.pos)
}

/// A final sample from a value scaled by `2^shift`, rounded, re-centred, clamped.
fn sample(v: i32, shift: u32) -> i16 {
    ((v.wrapping_add(1 << (shift - 1)) >> shift) + 128).clamp(0, 255) as i16
}

/// The 2-point 1-D inverse DCT of libjpeg's `jpeg_idct_2x2` (jidctred.c) with
/// both passes' scaling: dequantised frequency 0 and frequencies 1, 3, 5, 7 to two
/// samples. Inputs are within 16 bits: only the final sums can overflow (and
/// wrap, as in libjpeg-turbo's SSE2 code).
fn idct2(x0: i32, [x1, x3, x5, x7]: [i32; 4]) -> [i16; 2] {
    let even = x0 << 15;
    let odd = x1 * 29692 - x3 * 10426 + x5 * 6967 - x7 * 5906;
    [
        sample(even.wrapping_add(odd), 18),
        sample(even.wrapping_sub(odd), 18),
    ]
}

/// The 4-point 1-D inverse DCT of libjpeg's `jpeg_idct_4x4` (jidctred.c) with
/// both passes' scaling: dequantised frequency 0 and frequencies 1, 2, 3, 5, 6, 7
/// to four samples. Inputs are within 16 bits: only the final sums can overflow.
fn idct4(x0: i32, [x1, x2, x3, x5, x6, x7]: [i32; 6]) -> [i16; 4] {
    let even = x0 << 14;
    let t2 = x2 * 15137 - x6 * 6270;
    let (t10, t12) = (even + t2, even - t2);
    let t0 = -x7 * 1730 + x5 * 11893 - x3 * 17799 + x1 * 8697;
    let t2 = -x7 * 4176 - x5 * 4926 + x3 * 7373 + x1 * 20995;
    [
        sample(t10.wrapping_add(t2), 17),
        sample(t12.wrapping_add(t0), 17),
        sample(t12.wrapping_sub(t0), 17),
        sample(t10.wrapping_sub(t2), 17),
    ]
}

/// How `upsample` doubles the resolution along one axis.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Filter {
    /// No upsampling.
    Copy,
    /// From interval means: the left/top half of interval `i` gets
    /// `m[i] + (m[i-1] - m[i+1]) / 8` (the right/bottom half the mirror image), which
    /// is exact when the underlying signal is locally quadratic.
    Means,
    /// libjpeg's "fancy" triangle filter: 3/4 nearer sample, 1/4 further one,
    /// rounding alternately down and up.
    Fancy,
}

impl Filter {
    /// Weights in eighths of the (previous, own, next) source sample for the first
    /// of the two outputs from one sample (the second one mirrors them), and whether
    /// the first rounds down.
    fn weights(self) -> ([i32; 3], bool) {
        match self {
            Filter::Copy => ([0, 8, 0], false),
            Filter::Means => ([1, 8, -1], false),
            Filter::Fancy => ([2, 6, 0], true),
        }
    }
}

/// Upsamples a `sw` x `sh` plane with `fx` across and `fy` down, cropped to
/// `ow` x `oh` (which must not exceed the upsampled size); edges are replicated.
fn upsample(
    src: &[u8],
    sw: usize,
    sh: usize,
    fx: Filter,
    fy: Filter,
    ow: usize,
    oh: usize,
) -> Option<Vec<u8>> {
    if sw == 0 || sh == 0 || src.len() < sw * sh {
        return None;
    }
    // Across, into eighths (at most 10 * 255 in magnitude) plus a rounding bias
    // that makes the total 32 / 64 (16 / 64 where a fancy first output rounds down).
    let ([w0, w1, w2], down_x) = fx.weights();
    let (bias0, bias1) = if down_x { (2, 4) } else { (4, 4) };
    let mut across = Vec::with_capacity(sh.checked_mul(ow)?);
    let mut padded = Vec::with_capacity(sw + 2);
    for row in src.chunks_exact(sw).take(sh) {
        let start = across.len();
        if fx == Filter::Copy {
            across.extend(row.iter().take(ow).map(|&v| 8 * i16::from(v) + 4));
        } else {
            padded.clear();
            padded.push(*row.first()?);
            padded.extend_from_slice(row);
            padded.push(*row.last()?);
            for w in padded.windows(3) {
                let [prev, own, next] = [w[0], w[1], w[2]].map(i32::from);
                across.push((w0 * prev + w1 * own + w2 * next + bias0) as i16);
                across.push((w2 * prev + w1 * own + w0 * next + bias1) as i16);
            }
        }
        across.truncate(start + ow);
        if across.len() != start + ow {
            return None;
        }
    }
    // Down, from eighths to 64ths.
    let ([w0, w1, w2], down_y) = fy.weights();
    let mut out = Vec::with_capacity(ow * oh);
    for oy in 0..oh {
        let own = if fy == Filter::Copy { oy } else { oy / 2 }.min(sh - 1);
        let (prev, next) = (own.saturating_sub(1), (own + 1).min(sh - 1));
        let (wp, wn, bias) = if fy == Filter::Copy || oy % 2 == 0 {
            (w0, w2, if down_y { 16 } else { 0 })
        } else {
            (w2, w0, 0)
        };
        let rp = across.get(prev * ow..(prev + 1) * ow)?;
        let rm = across.get(own * ow..(own + 1) * ow)?;
        let rn = across.get(next * ow..(next + 1) * ow)?;
        out.extend(rp.iter().zip(rm).zip(rn).map(|((&vp, &vm), &vn)| {
            let acc = wp * i32::from(vp) + w1 * i32::from(vm) + wn * i32::from(vn) - bias;
            (acc >> 6).clamp(0, 255) as u8
        }));
    }
    Some(out)
}

/// libjpeg's `FIX(x)` for `SCALEBITS` = 16.
const fn fix(x: f64) -> i32 {
    (x * 65536.0 + 0.5) as i32
}

/// Converts full-range YCbCr planes to interleaved RGB, appending to `out`, with
/// the arithmetic of libjpeg's tables (jdcolor.c).
fn ycc_to_rgb(y: &[u8], cb: &[u8], cr: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    out.resize(start + 3 * y.len(), 0);
    let Some(dst) = out.get_mut(start..) else {
        return;
    };
    for (((px, &y), &cb), &cr) in dst.chunks_exact_mut(3).zip(y).zip(cb).zip(cr) {
        let (y, cb, cr) = (i32::from(y), i32::from(cb) - 128, i32::from(cr) - 128);
        let r = y + ((fix(1.402_00) * cr + 32768) >> 16);
        let g = y + ((-fix(0.344_14) * cb - fix(0.714_14) * cr + 32768) >> 16);
        let b = y + ((fix(1.772_00) * cb + 32768) >> 16);
        px[0] = r.clamp(0, 255) as u8;
        px[1] = g.clamp(0, 255) as u8;
        px[2] = b.clamp(0, 255) as u8;
    }
}

#[cfg(test)]
#[allow(clippy::cast_precision_loss)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use turbojpeg::{Compressor, Image, PixelFormat, Subsamp};

    /// Deterministic photo-like RGB content: smooth waves, a few discs, mild noise.
    fn photo(w: usize, h: usize, seed: u32) -> Vec<u8> {
        let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        let mut noise = move || {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            f64::from(state % 13) - 6.0
        };
        let discs: Vec<(f64, f64, f64, [f64; 3])> = (0..6u32)
            .map(|i| {
                let f = f64::from(i + seed);
                let (cx, cy) = ((f * 0.37).fract() * w as f64, (f * 0.61).fract() * h as f64);
                let r = (0.05 + (f * 0.23).fract() * 0.2) * w.min(h) as f64;
                (
                    cx,
                    cy,
                    r,
                    [(f * 71.0) % 255.0, (f * 131.0) % 255.0, (f * 37.0) % 255.0],
                )
            })
            .collect();
        let mut out = Vec::with_capacity(w * h * 3);
        for y in 0..h {
            for x in 0..w {
                let (fx, fy) = (x as f64 / w.max(2) as f64, y as f64 / h.max(2) as f64);
                let mut px = [
                    128.0 + 90.0 * (fx * 5.0 + fy * 2.0).sin(),
                    128.0 + 70.0 * (fy * 6.0 - fx).cos(),
                    128.0 + 60.0 * ((fx - fy) * 4.0).sin(),
                ];
                for &(cx, cy, r, col) in &discs {
                    if (x as f64 - cx).powi(2) + (y as f64 - cy).powi(2) < r * r {
                        for (p, c) in px.iter_mut().zip(col) {
                            *p = *p * 0.5 + c * 0.5;
                        }
                    }
                }
                for p in px {
                    out.push((p + noise()).clamp(0.0, 255.0) as u8);
                }
            }
        }
        out
    }

    fn encode(w: usize, h: usize, subsamp: Subsamp, progressive: bool, optimize: bool) -> Vec<u8> {
        let pixels = photo(w, h, (w * 31 + h) as u32);
        let mut c = Compressor::new().unwrap();
        c.set_quality(90).unwrap();
        c.set_subsamp(subsamp).unwrap();
        c.set_progressive(progressive).unwrap();
        c.set_optimize(optimize).unwrap();
        let image = Image {
            pixels: pixels.as_slice(),
            width: w,
            pitch: w * 3,
            height: h,
            format: PixelFormat::RGB,
        };
        c.compress_to_vec(image).unwrap()
    }

    fn eighth(data: &[u8]) -> Option<Scaled> {
        decode_scaled(data, 8, 8)
    }

    /// libjpeg-turbo's own RGB decode scaled by `factor`.
    fn turbo_scaled(data: &[u8], factor: turbojpeg::ScalingFactor) -> (usize, usize, Vec<u8>) {
        let mut d = turbojpeg::Decompressor::new().unwrap();
        let header = d.read_header(data).unwrap();
        d.set_scaling_factor(factor).unwrap();
        let s = header.scaled(factor);
        let mut img = Image {
            pixels: vec![0u8; s.width * s.height * 3],
            width: s.width,
            pitch: s.width * 3,
            height: s.height,
            format: PixelFormat::RGB,
        };
        d.decompress(data, img.as_deref_mut()).unwrap();
        (s.width, s.height, img.pixels)
    }

    /// The reference at 1/`rx` x 1/`ry`: libjpeg-turbo's own decode at 1/8, or its
    /// 1/4 decode with pairs of pixels averaged (rounding up) along the axis reduced
    /// by 8 (a lone last pixel kept).
    fn reference(data: &[u8], rx: u32, ry: u32) -> (usize, usize, Vec<u8>) {
        if (rx, ry) == (8, 8) {
            return turbo_scaled(data, turbojpeg::ScalingFactor::ONE_EIGHTH);
        }
        let (w, h, quarter) = turbo_scaled(data, turbojpeg::ScalingFactor::ONE_QUARTER);
        let (ow, oh) = if rx == 8 {
            (w.div_ceil(2), h)
        } else {
            (w, h.div_ceil(2))
        };
        let mut out = Vec::with_capacity(ow * oh * 3);
        for y in 0..oh {
            for x in 0..ow {
                let (first, second) = if rx == 8 {
                    ((y, 2 * x), (y, (2 * x + 1).min(w - 1)))
                } else {
                    ((2 * y, x), ((2 * y + 1).min(h - 1), x))
                };
                for c in 0..3 {
                    let pa = u16::from(quarter[(first.0 * w + first.1) * 3 + c]);
                    let pb = u16::from(quarter[(second.0 * w + second.1) * 3 + c]);
                    out.push((pa + pb).div_ceil(2) as u8);
                }
            }
        }
        (ow, oh, out)
    }

    /// Decodes with both at 1/8 and returns (per-channel mean abs difference, max abs difference).
    fn compare(data: &[u8]) -> ([f64; 3], u8) {
        compare_at(data, 8, 8)
    }

    /// `compare` at 1/`rx` x 1/`ry`.
    fn compare_at(data: &[u8], rx: u32, ry: u32) -> ([f64; 3], u8) {
        let ours = decode_scaled(data, rx, ry).expect("decode_scaled returned None");
        let (tw, th, tp) = reference(data, rx, ry);
        assert_eq!((ours.width as usize, ours.height as usize), (tw, th));
        assert_eq!(ours.pixels.len(), tp.len());
        let mut sum = [0f64; 3];
        let mut max = 0;
        for (i, (a, b)) in ours.pixels.iter().zip(&tp).enumerate() {
            let d = a.abs_diff(*b);
            sum[i % 3] += f64::from(d);
            max = max.max(d);
        }
        let n = (tw * th) as f64;
        (sum.map(|s| s / n), max)
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    // Made with Pillow (37x27, 4:4:4): baseline with a restart marker after every
    // MCU and optimised tables; progressive with restarts every 2 MCUs; and, made
    // with cjpeg -scans, sequential with one scan per component (order Y, Cr, Cb).
    const T_RST: &str = concat!(
        "ffd8ffe000104a46494600010100000100010000ffdb0043000d090a0b0a080d0b0a0b0e0e0d0f1320151312",
        "1213271c1e17202e2931302e292d2c333a4a3e333646372c2d405741464c4e525352323e5a615a50604a5152",
        "4fffdb0043010e0e0e131113261515264f352d354f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f",
        "4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4fffc0001108001b0025030111000211010311",
        "01ffc4001800000301010000000000000000000000000304050602ffc4002610000201030303040300000000",
        "00000000010200030411122131416191051451a171b1d1ffc4001a0100020301010000000000000000000000",
        "04050203060001ffc4001f1100020202030101010000000000000000000102030411122131221451ffdd0004",
        "0001ffda000c03010002110311003f00d0d0b94500e76f317424dfa115e369787fffd0d1d5be40a4e448570d",
        "f4597a691fffd17ee6f909c6aebc4b5e33623c9db3ffd2e8575624647f6537e3ebb3350a5c99ffd37e856509",
        "f27b44b6434c069c36e3d1ffd4135fb20e4e07dc0a15e99a69d518a3ffd5995fd51b2466158f1f02b2f47fff",
        "d681ef9dcec7afd4d0460b42f9d5c99fffd79542ab31edf98e2ea534798b89b3ffd00ad620759d6637d0fabc",
        "64a3e1ffd19f7541b040dcf6956b4c73939a923fffd2cd54a0ecfc1df893aade2537e4f267ffd3816f64ee46",
        "06630865a40f4fd33fffd405bd830036f11a7e852f46b8fa5d9fffd5e8da15db27f70d93db348f2147a3ffd6",
        "35da2b67233212f4072672dfa7ffd759d1320e91036ded88136df67fffd02dbd340010a22e537b06c53fffd1",
        "b9469a68074882d5397f46106cffd2bb51141c012716f4136c9a67ffd9",
    );
    const T_RST_PROG: &str = concat!(
        "ffd8ffe000104a46494600010100000100010000ffdb0043000d090a0b0a080d0b0a0b0e0e0d0f1320151312",
        "1213271c1e17202e2931302e292d2c333a4a3e333646372c2d405741464c4e525352323e5a615a50604a5152",
        "4fffdb0043010e0e0e131113261515264f352d354f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f",
        "4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4fffc2001108001b0025030111000211010311",
        "01ffc400190001010003010000000000000000000000040300010502ffc40018010101010101000000000000",
        "00000000000304020501ffdd00040002ffda000c03010002100310000001e84c9b7cff00ffd0bea18917ffd1",
        "bc4056ed7fffd22aac6b8bffd3259e223e87ffd43e2c2241ffd5e7d06cd5dfffd6db74bd4fc6ffd790f3ef8a",
        "ff00ffd071518c7fffc400191001010101010100000000000000000000000102121103ffda00080101000105",
        "029a5dbfffd0d6debfffd195dbffd2bf576fffd395ebffd4d458ffd5ce19c3ffd6e5a7ffd7663fffd0915fff",
        "c4001a110003010101010000000000000000000000020301112113ffda0008010301013f01598e7fffd0a189",
        "d3ffd148f86ae61fffd2a9abd3ffd394859f87ffd4a587a74fffd54f499fffd6fa70a6e9ffd7247fffd0c1b4",
        "ffc4001a110003010101010000000000000000000000010203111321ffda0008010201013f014c947fffd0f3",
        "2f33ffd1a4293fffd2cd091fffd3b82b3fa7ffd426b87fffd55a9e9d3fffd6633fffd73a7fffd096c47fffc4",
        "0014100100000000000000000000000000000010ffda0008010100063f023fffd03fffd13fffd23fffd33fff",
        "d43fffd53fffd63fffd73fffd03fffc400191001010101010100000000000000000000010011512131ffda00",
        "08010100013f21221cbfffd01ed96fffd13c965fffd26b6dffd3662fffd47956ffd5465bffd6f311bfffd743",
        "9072ffd02cf902ffda000c03010002000300000010dbffd0c7ffd19bffd293ffd3a3ffd47bffd597ffd64bff",
        "d7bfffd01fffc400191101010101010100000000000000000000010011213110ffda0008010301013f10c4f2",
        "285fffd0db32bfffd14788cbffd2cdbaffd3d613c5ffd430b75fffd5e960edffd64716ef6fffd7157bf1ffd0",
        "6cc37fffc4001a110101010101010100000000000000000001001131102151ffda0008010201013f1067b6bf",
        "2fffd05b65f6ffd1c5b26fffd2e10e5fffd304f17fffd4cc7cdfffd532c757ffd65add5fffd757587b7fffd0",
        "fdd272ffc400201001000202010403000000000000000000010011213161415191a171b1d1ffda0008010100",
        "013f10386f1e615364ffd06b5dda8312cfd9ffd1277bc4176d1ee7ffd2b8972de1ebea7fffd3738f9881d67f",
        "ffd4a4865e269ae753ffd55ca2e0831e27ffd65e16fdcbcb2e7fffd7be34810413ffd0a36904d04fffd9",
    );
    const T_NONINT: &str = concat!(
        "ffd8ffe000104a46494600010100000100010000ffdb0043000d090a0b0a080d0b0a0b0e0e0d0f1320151312",
        "1213271c1e17202e2931302e292d2c333a4a3e333646372c2d405741464c4e525352323e5a615a50604a5152",
        "4fffdb0043010e0e0e131113261515264f352d354f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f",
        "4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4fffc0001108001b0025030111000211010311",
        "01ffc400190001010003010000000000000000000000040501020306ffc40026100002010303030403000000",
        "0000000000010200030411122131416191051451a171b1d1ffda0008010100003f00f4342e514039dbccdaad",
        "f20527224bb9be4271abaf1042bab12323fb1b42b284f93da4b6bf641c9c0fb81afea8d923307ef9dcec7afd",
        "4550aacc7b7e63d6b103ac2dd506c10373da4aa941d9f83bf13b5bd93b91819962dec1801b7889368576c9fd",
        "ce9768ad9c8cc03a2641d223ade9a0008512bd1a69a01d2266a22838027fffc4001801010003010000000000",
        "000000000000000503040602ffc4001d110002030003010100000000000000000000010203041121311222ff",
        "da0008010311003f00b15e6e178477a6919fd3cb2b4297262f4e36e3d1b49d518a03d7c02ceafa65fcb9391f",
        "af3251f08b4ed49005fa7e99cd3fa63b9f85d97de851e8c6e99cb9f43936df62d94660d905b2699fffc40016",
        "0101010100000000000000000000000000040503ffc4001f1100020300020203000000000000000000000102",
        "031104311221142251ffda0008010211003f009d0937d8eae1be843e33612fe3e7b25d90c63615e32bf1e3d1",
        "5a30581eea53447b38df632cc622ab7c46c39691a7c852ecc24f593e5d866deb32537a6f54e5fa362de1ffd9",
    );

    #[test]
    fn full_resolution_chroma_and_gray_match_libjpeg_turbo() {
        for &(w, h) in &[(1, 1), (7, 5), (17, 9), (64, 48), (203, 151)] {
            for subsamp in [Subsamp::None, Subsamp::Gray] {
                for (progressive, optimize) in [(false, false), (false, true), (true, false)] {
                    let data = encode(w, h, subsamp, progressive, optimize);
                    let (mean, max) = compare(&data);
                    assert!(
                        mean.iter().all(|&m| m <= 1.0) && max <= 12,
                        "{w}x{h} {subsamp:?} {progressive}: {mean:?} {max}"
                    );
                }
            }
        }
    }

    #[test]
    fn subsampled_chroma_close_to_libjpeg_turbo() {
        // Photo-like sizes: at 1/8 one chroma block spans several output pixels, so
        // small images full of sharp edges differ more (libjpeg-turbo's h2v2 chroma uses
        // the AC coefficients too).
        for &(w, h) in &[(640, 480), (1001, 777)] {
            for subsamp in [Subsamp::Sub2x1, Subsamp::Sub2x2, Subsamp::Sub1x2] {
                for progressive in [false, true] {
                    let data = encode(w, h, subsamp, progressive, false);
                    let (mean, _) = compare(&data);
                    assert!(
                        mean.iter().all(|&m| m <= 2.0),
                        "{w}x{h} {subsamp:?} {progressive}: {mean:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn baseline_and_progressive_agree() {
        for subsamp in [Subsamp::None, Subsamp::Sub2x2, Subsamp::Gray] {
            let a = eighth(&encode(99, 70, subsamp, false, false)).unwrap();
            let b = eighth(&encode(99, 70, subsamp, true, false)).unwrap();
            assert_eq!(a.pixels, b.pixels);
        }
    }

    #[test]
    fn restart_markers_and_non_interleaved_scans() {
        for file in [T_RST, T_RST_PROG, T_NONINT] {
            let data = hex(file);
            assert_eq!(compare(&data), ([0.0; 3], 0));
        }
    }

    #[test]
    fn adobe_rgb_is_not_colour_converted() {
        let pixels = photo(40, 24, 9);
        let mut c = Compressor::new().unwrap();
        c.set_colorspace(turbojpeg::Colorspace::RGB).unwrap();
        c.set_subsamp(Subsamp::None).unwrap();
        let image = Image {
            pixels: pixels.as_slice(),
            width: 40,
            pitch: 120,
            height: 24,
            format: PixelFormat::RGB,
        };
        let data = c.compress_to_vec(image).unwrap();
        assert!(data.windows(5).any(|w| w == b"Adobe"));
        assert_eq!(compare(&data).1, 0);
    }

    #[test]
    fn unsupported_inputs_return_none() {
        let pixels = photo(32, 16, 3);
        let image = || Image {
            pixels: pixels.as_slice(),
            width: 32,
            pitch: 96,
            height: 16,
            format: PixelFormat::RGB,
        };
        let mut c = Compressor::new().unwrap();
        c.set_arithmetic(true).unwrap();
        assert!(eighth(&c.compress_to_vec(image()).unwrap()).is_none());
        let mut c = Compressor::new().unwrap();
        c.set_lossless(true).unwrap();
        assert!(eighth(&c.compress_to_vec(image()).unwrap()).is_none());
        let mut c = Compressor::new().unwrap();
        c.set_subsamp(Subsamp::Sub4x1).unwrap();
        assert!(eighth(&c.compress_to_vec(image()).unwrap()).is_none());
        let cmyk = vec![100u8; 32 * 16 * 4];
        let mut c = Compressor::new().unwrap();
        let cmyk_image = Image {
            pixels: cmyk.as_slice(),
            width: 32,
            pitch: 128,
            height: 16,
            format: PixelFormat::CMYK,
        };
        assert!(eighth(&c.compress_to_vec(cmyk_image).unwrap()).is_none());
        for junk in [
            &b""[..],
            b"\xff",
            b"\xff\xd8",
            b"\xff\xd8\xff\xd9",
            b"GIF89a",
            &[0xFF; 64],
        ] {
            assert!(eighth(junk).is_none());
        }
    }

    #[test]
    fn truncated_files_never_panic() {
        for data in [
            encode(40, 33, Subsamp::Sub2x2, false, false),
            encode(40, 33, Subsamp::Sub2x1, true, false),
            hex(T_RST),
        ] {
            let eoi = data.len() - 2;
            for len in 0..data.len() {
                let got = eighth(&data[..len]);
                if len < eoi
                    && len + 16 < data.len()
                    && data[..len]
                        .windows(2)
                        .filter(|w| w == &[0xFF, 0xDA])
                        .count()
                        < 2
                {
                    // Cut inside the header or the only (baseline) scan's data.
                    if !data[..len].windows(2).any(|w| w == [0xFF, 0xC2]) {
                        assert!(got.is_none(), "len {len}");
                    }
                }
            }
        }
    }

    #[test]
    fn upsample_keeps_constant_and_linear_planes() {
        for (fx, fy) in [
            (Filter::Means, Filter::Means),
            (Filter::Fancy, Filter::Copy),
            (Filter::Means, Filter::Fancy),
        ] {
            let flat = upsample(&[77; 6], 3, 2, fx, fy, 6, 4).unwrap();
            assert!(flat.iter().all(|&v| v == 77));
        }
        // A horizontal ramp of block means 10, 20, 30: interior halves at -2.5/+2.5.
        let ramp = upsample(&[10, 20, 30], 3, 1, Filter::Means, Filter::Copy, 6, 1).unwrap();
        assert_eq!(ramp[2..4], [18, 23]);
        // libjpeg's fancy filter: 3/4 nearer, 1/4 further, rounding down then up.
        let ramp = upsample(&[10, 20, 30], 3, 1, Filter::Fancy, Filter::Copy, 6, 1).unwrap();
        assert_eq!(ramp, [10, 13, 17, 23, 27, 30]);
        let col = upsample(&[10, 20, 30], 1, 3, Filter::Copy, Filter::Fancy, 1, 6).unwrap();
        assert_eq!(col, [10, 13, 17, 23, 27, 30]);
        // Too small a source for the output.
        assert!(upsample(&[1, 2], 2, 1, Filter::Means, Filter::Copy, 5, 1).is_none());
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

    #[test]
    fn bad_huffman_tables_are_rejected() {
        // Three codes of length 1 cannot exist.
        let mut counts = [0u8; 16];
        counts[0] = 3;
        assert!(build_huffman(&counts, &[0, 1, 2]).is_none());
        counts[0] = 2;
        assert!(build_huffman(&counts, &[0, 1]).is_some());
    }

    #[test]
    fn anisotropic_full_resolution_chroma_and_gray_match_libjpeg_turbo() {
        for &(w, h) in &[(1, 1), (7, 5), (17, 9), (64, 48), (203, 151), (640, 480)] {
            for subsamp in [Subsamp::None, Subsamp::Gray] {
                for optimize in [false, true] {
                    let data = encode(w, h, subsamp, false, optimize);
                    for (rx, ry) in [(8, 4), (4, 8)] {
                        let (mean, max) = compare_at(&data, rx, ry);
                        // Our samples are the exact mean of the pair, the reference
                        // averages two rounded samples: at most 1 apart in YCbCr.
                        assert!(
                            mean.iter().all(|&m| m <= 1.0) && max <= 4,
                            "{w}x{h} {subsamp:?} ({rx}, {ry}): {mean:?} {max}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn anisotropic_subsampled_chroma_close_to_libjpeg_turbo() {
        for &(w, h) in &[(640, 480), (1001, 777)] {
            for subsamp in [Subsamp::Sub2x1, Subsamp::Sub2x2, Subsamp::Sub1x2] {
                let data = encode(w, h, subsamp, false, false);
                for (rx, ry) in [(8, 4), (4, 8)] {
                    let (mean, _) = compare_at(&data, rx, ry);
                    assert!(
                        mean.iter().all(|&m| m <= 2.0),
                        "{w}x{h} {subsamp:?} ({rx}, {ry}): {mean:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn anisotropic_restarts_and_non_interleaved_scans() {
        for file in [T_RST, T_NONINT] {
            let data = hex(file);
            for (rx, ry) in [(8, 4), (4, 8)] {
                // Tiny and busy (4:4:4): the reference averages samples libjpeg
                // clamped to 0..=255 first, so pairs that overshoot differ more.
                let (mean, max) = compare_at(&data, rx, ry);
                assert!(
                    mean.iter().all(|&m| m <= 2.0) && max <= 12,
                    "{mean:?} {max}"
                );
            }
        }
    }

    #[test]
    fn anisotropic_is_the_one_dimensional_idct() {
        // A horizontal stripe pattern: every block's energy is in its first column of
        // coefficients, so the (8, 4) result is libjpeg's 1/4 one with equal pairs.
        let (w, h) = (64, 32);
        let pixels: Vec<u8> = (0..w * h)
            .flat_map(|i| {
                let v = if (i / w) % 8 < 3 { 40 } else { 200 };
                [v, v, v]
            })
            .collect();
        let mut c = Compressor::new().unwrap();
        c.set_subsamp(Subsamp::Gray).unwrap();
        c.set_quality(95).unwrap();
        let image = Image {
            pixels: pixels.as_slice(),
            width: w,
            pitch: w * 3,
            height: h,
            format: PixelFormat::RGB,
        };
        let data = c.compress_to_vec(image).unwrap();
        let (mean, max) = compare_at(&data, 8, 4);
        assert!(mean[0] <= 0.5 && max <= 1, "{mean:?} {max}");
        let ours = decode_scaled(&data, 8, 4).unwrap();
        assert_eq!((ours.width, ours.height), (8, 8));
        // Rows alternate dark and light, as the 2-point transform resolves them.
        assert!(ours.pixels[0] < ours.pixels[8 * 3]);
    }

    #[test]
    fn other_scales_and_progressive_anisotropic_return_none() {
        let baseline = encode(40, 24, Subsamp::Sub2x2, false, false);
        let progressive = encode(40, 24, Subsamp::Sub2x2, true, false);
        for (rx, ry) in [
            (1, 1),
            (2, 2),
            (4, 4),
            (8, 2),
            (2, 8),
            (8, 1),
            (0, 0),
            (16, 8),
        ] {
            assert!(decode_scaled(&baseline, rx, ry).is_none(), "({rx}, {ry})");
        }
        for (rx, ry) in [(8, 4), (4, 8)] {
            assert!(decode_scaled(&progressive, rx, ry).is_none());
            assert!(decode_scaled(&hex(T_RST_PROG), rx, ry).is_none());
            assert!(decode_scaled(&baseline, rx, ry).is_some());
        }
        assert!(decode_scaled(&progressive, 8, 8).is_some());
    }

    #[test]
    fn anisotropic_truncated_files_never_panic() {
        for data in [
            encode(40, 33, Subsamp::Sub2x2, false, false),
            encode(33, 40, Subsamp::Sub2x1, false, true),
            hex(T_RST),
        ] {
            let eoi = data.len() - 2;
            for len in 0..data.len() {
                for (rx, ry) in [(8, 4), (4, 8)] {
                    let got = decode_scaled(&data[..len], rx, ry);
                    if len + 16 < eoi {
                        assert!(got.is_none(), "len {len}");
                    }
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        #[test]
        fn mutated_jpegs_never_panic(
            kind in 0usize..5,
            scale in 0usize..3,
            flips in proptest::collection::vec((any::<u16>(), any::<u8>()), 0..6),
            cut in any::<u16>(),
            truncate in any::<bool>(),
        ) {
            let mut data = match kind {
                0 => encode(45, 30, Subsamp::Sub2x2, false, false),
                1 => encode(45, 30, Subsamp::None, true, false),
                2 => encode(45, 30, Subsamp::Gray, false, true),
                3 => encode(30, 45, Subsamp::Sub2x1, false, false),
                _ => hex(T_RST),
            };
            for (at, value) in flips {
                let i = usize::from(at) % data.len();
                data[i] = value;
            }
            if truncate {
                data.truncate(usize::from(cut) % (data.len() + 1));
            }
            let (rx, ry) = [(8, 8), (8, 4), (4, 8)][scale];
            if let Some(e) = decode_scaled(&data, rx, ry) {
                prop_assert_eq!(e.pixels.len(), e.width as usize * e.height as usize * 3);
            }
        }

        #[test]
        fn random_bytes_never_panic(tail in proptest::collection::vec(any::<u8>(), 0..400)) {
            let mut data = vec![0xFF, 0xD8];
            data.extend(tail);
            for (rx, ry) in [(8, 8), (8, 4), (4, 8)] {
                let _ = decode_scaled(&data, rx, ry);
            }
        }
    }
}
