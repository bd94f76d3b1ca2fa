//! The entropy-coded bit reader: refills a word at a time, stops at markers, and
//! skips AC symbols (optionally recording the few coefficients a scale needs).

use super::huffman::ac_advance;
use super::huffman::slow_symbol;
use super::huffman::Huffman;
use super::huffman::FAST_BITS;
use super::markers::next_marker;

/// Bit reader over entropy-coded data: 64-bit buffer, MSB first, byte unstuffing.
pub(super) struct Bits<'a> {
    /// The whole file.
    pub(super) data: &'a [u8],
    /// Next byte of `data` not yet in `buf`.
    pub(super) pos: usize,
    /// Bits, left-aligned: the top `n` are valid (lower ones are the stream's next
    /// bits or zero).
    pub(super) buf: u64,
    /// Number of valid bits in `buf`.
    pub(super) n: u32,
    /// Zero bytes appended after reaching a marker or the end of the data.
    pub(super) fake: u32,
    /// A marker (or the end of the data) was reached: only zeros follow.
    pub(super) at_marker: bool,
}

impl<'a> Bits<'a> {
    /// Starts reading at `pos`.
    pub(super) fn new(data: &'a [u8], pos: usize) -> Self {
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
    pub(super) fn ensure(&mut self) {
        if self.n < 32 {
            self.refill();
        }
    }

    /// Tops the buffer up to at least 56 valid bits; fast path (branch-free but for
    /// the 0xFF test) when the next 8 bytes hold no 0xFF.
    #[inline(always)]
    pub(super) fn refill(&mut self) {
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
    pub(super) fn overread(&self) -> bool {
        u64::from(self.fake) * 8 > u64::from(self.n)
    }

    /// Drops `k` (at most 32) bits; requires `ensure` before.
    #[inline(always)]
    pub(super) fn consume(&mut self, k: u32) {
        self.buf <<= k;
        self.n = self.n.saturating_sub(k);
    }

    /// Reads a DC difference: category symbol, then its magnitude bits.
    #[inline(always)]
    pub(super) fn dc_diff(&mut self, h: &Huffman) -> Option<i32> {
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
    pub(super) fn long_entry(&mut self, h: &Huffman) -> Option<u32> {
        self.ensure();
        let (sym, len) = slow_symbol(h, self.buf)?;
        Some((len + (sym & 15)) | len << 5 | ac_advance(sym) << 10)
    }

    /// Skips one AC symbol whose entry is `e`, moving `k` on; if `RECORD`, first
    /// notes the entry and the bits it starts with (see `Record`).
    #[inline(always)]
    pub(super) fn step<const RECORD: bool>(&mut self, e: u32, k: &mut u32, rec: &mut Record) {
        *k += e >> 10;
        if RECORD {
            rec.0[(*k & 127) as usize] = (self.buf & !0xFFFF) | u64::from(e & 0x3FF);
        }
        self.consume(e & 31);
    }

    /// Skips the AC symbols of a sequential block from position `k` until
    /// position 64 is reached, recording them if `RECORD`.
    #[inline(always)]
    pub(super) fn skip_ac<const RECORD: bool>(
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
    pub(super) fn restart(&mut self, expected: u8) -> Option<()> {
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
pub(super) struct Record(pub(super) [u64; 128]);

impl Record {
    /// The value of the coefficient at zigzag position `z` (`z` < 127), if its slot
    /// was zeroed before the block; ZRL and EOB entries give zero, as do the
    /// positions they cover.
    pub(super) fn value(&self, z: usize) -> i32 {
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
pub(super) fn refill_slow(
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
