//! Huffman tables prepared for the few-coefficient decoder: one lookup resolves a
//! DC symbol or skips an AC one.

/// Number of leading bits resolved by one Huffman table lookup.
pub(super) const FAST_BITS: u32 = 11;
/// Entries in a Huffman lookup table.
pub(super) const FAST_SIZE: usize = 1 << FAST_BITS;

/// A Huffman table prepared for decoding DC symbols and skipping AC symbols.
pub(super) struct Huffman {
    /// Indexed by the next `FAST_BITS` bits of the stream. For codes of at most
    /// `FAST_BITS` bits: bits 0..5 the code length plus the number of magnitude bits
    /// that follow it (bits to drop to skip the symbol), 5..10 the code length,
    /// 10..16 how many coefficient positions the symbol advances when used as an AC
    /// symbol (run + 1; 16 for ZRL; 63 for EOB, which ends any block). Zero for
    /// longer codes (and unused ones).
    pub(super) lut: [u16; FAST_SIZE],
    /// `maxcode[l]`: the largest code of length `l`, or -1 if none.
    pub(super) maxcode: [i32; 17],
    /// `valoffset[l]`: index in `vals` of the first symbol of length `l`, minus its code.
    pub(super) valoffset: [i32; 17],
    /// Symbols in code order.
    pub(super) vals: [u8; 256],
    /// For AC symbols, indexed like `lut`: the entries of the one or two whole
    /// symbols (with their magnitude bits) those bits start with: the first in bits
    /// 0..16, the second (zero if none fits, or the first is an EOB) in 16..32, the
    /// bits both take in 32..40. Zero if not even the first fits.
    pub(super) pair: [u64; FAST_SIZE],
}

/// AC advance of a run/size symbol (see `Huffman::lut`).
pub(super) fn ac_advance(sym: u32) -> u32 {
    match (sym & 15, sym >> 4) {
        (0, 15) => 16,
        (0, _) => 63,
        (_, run) => run + 1,
    }
}

/// Builds a Huffman table from a DHT segment's 16 counts and its symbols.
pub(super) fn build_huffman(counts: &[u8], symbols: &[u8]) -> Option<Box<Huffman>> {
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
/// Decodes a code longer than `FAST_BITS` bits at the top of `buf`: (symbol, code length).
#[cold]
#[inline(never)]
pub(super) fn slow_symbol(h: &Huffman, buf: u64) -> Option<(u32, u32)> {
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
