//! One scan: its header (SOS), the block layout of its MCUs, and the entropy-coded
//! data decoded to one DC value or a few samples per block.

use super::bits::Bits;
use super::bits::Record;
use super::frame::BlockSlot;
use super::frame::Component;
use super::frame::Decoder;
use super::huffman::Huffman;
use super::idct::idct2;
use super::idct::idct4;

/// How a scan's blocks are decoded.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
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

impl Decoder<'_> {
    /// Parses a SOS segment and decodes (or skips) its entropy-coded data starting at
    /// `pos`; returns where to look for the next marker.
    pub(super) fn read_sos(&mut self, seg: &[u8], pos: usize) -> Option<usize> {
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
}

/// A scan's geometry.
pub(super) struct Scan<'s> {
    /// Blocks of one MCU.
    pub(super) slots: &'s [BlockSlot],
    /// MCUs per row.
    pub(super) mcus_x: usize,
    /// MCU rows.
    pub(super) mcus_y: usize,
    /// Restart interval in MCUs (0: none).
    pub(super) restart: usize,
    /// Successive approximation bit position.
    pub(super) al: u32,
}

/// Decodes one scan's entropy-coded data. `MODE`: 0 sequential, 1 progressive DC
/// first, 2 progressive DC refinement.
pub(super) fn decode_scan<const MODE: u8>(
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
