//! One scan: its header (SOS), the block layout of its MCUs, and the entropy-coded
//! data decoded to one DC value or a few samples per block.

use super::bits::Bits;
use super::bits::Record;
use super::frame::BlockSlot;
use super::frame::Component;
use super::frame::Decoder;
use super::frame::Frame;
use super::huffman::Huffman;
use super::idct::idct2;
use super::idct::idct4;

/// How a scan's blocks are decoded.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    /// Sequential: DC difference, then the AC coefficients skipped.
    Sequential,
    /// Progressive DC first scan: DC difference shifted left by Al.
    DcFirst,
    /// Progressive DC refinement: one bit (bit Al) per block.
    DcRefine,
    /// Sequential, two or four samples per block from the first column of
    /// coefficients (1/8 across, 1/4 down).
    Column,
    /// Sequential, from the first row of coefficients (1/4 across, 1/8 down).
    Row,
    /// Progressive AC scan: not needed at 1/8; its data is jumped over.
    Skipped,
}

impl Mode {
    /// The mode of a scan of `ns` components with spectral selection `ss..=se` and
    /// successive approximation bits `ah`, `al`; None if the frame does not allow it.
    fn of(frame: &Frame, ns: usize, ss: u8, se: u8, ah: u8, al: u8) -> Option<Self> {
        if !frame.progressive {
            if ss != 0 || se != 63 || ah != 0 || al != 0 {
                return None;
            }
            return Some(match frame.per {
                (1, 2) => Self::Column,
                (2, 1) => Self::Row,
                _ => Self::Sequential,
            });
        }
        if ss != 0 {
            return (ns == 1 && se >= ss && se <= 63 && al <= 13).then_some(Self::Skipped);
        }
        if se != 0 || al > 13 {
            None
        } else if ah == 0 {
            Some(Self::DcFirst)
        } else if ah == al + 1 {
            Some(Self::DcRefine)
        } else {
            None
        }
    }
}

/// A [`Mode`] as a type, so that [`decode_scan`] is compiled once per mode with its
/// per-block `match` folded away (stable Rust has no enum-valued const generics).
pub(super) trait Kind {
    /// The mode this type stands for.
    const MODE: Mode;
}

/// One zero-sized [`Kind`] per decoded [`Mode`].
mod kind {
    use super::{Kind, Mode};

    macro_rules! kinds {
        ($($name:ident),*) => {$(
            pub(super) struct $name;
            impl Kind for $name {
                const MODE: Mode = Mode::$name;
            }
        )*};
    }
    kinds!(Sequential, DcFirst, DcRefine, Column, Row);
}

impl Decoder<'_> {
    /// Parses a SOS segment and decodes (or skips) its entropy-coded data starting at
    /// `pos`; returns where to look for the next marker.
    pub(super) fn read_sos(&mut self, seg: &[u8], pos: usize) -> Option<usize> {
        let frame = self.frame.as_ref()?;
        let ns = usize::from(*seg.first()?);
        if !(1..=4).contains(&ns) || seg.len() != 4 + 2 * ns {
            return None;
        }
        let ss = *seg.get(1 + 2 * ns)?;
        let se = *seg.get(2 + 2 * ns)?;
        let ahal = *seg.get(3 + 2 * ns)?;
        let mode = Mode::of(frame, ns, ss, se, ahal >> 4, ahal & 15)?;
        if mode == Mode::Skipped {
            return Some(pos);
        }
        let mut slots = [BlockSlot::default(); 10];
        let nslots = self.slots(seg.get(1..1 + 2 * ns)?, mode, &mut slots)?;
        let frame = self.frame.as_mut()?;
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
            al: u32::from(ahal & 15),
        };
        let (data, comps, dc, ac) = (self.data, &mut frame.comps, &self.dc, &self.ac);
        match mode {
            Mode::Sequential => decode_scan::<kind::Sequential>(data, pos, comps, &scan, dc, ac),
            Mode::DcFirst => decode_scan::<kind::DcFirst>(data, pos, comps, &scan, dc, ac),
            Mode::DcRefine => decode_scan::<kind::DcRefine>(data, pos, comps, &scan, dc, ac),
            Mode::Column => decode_scan::<kind::Column>(data, pos, comps, &scan, dc, ac),
            Mode::Row => decode_scan::<kind::Row>(data, pos, comps, &scan, dc, ac),
            Mode::Skipped => Some(pos),
        }
    }

    /// Fills `slots` with the block positions of one MCU for the scan's component
    /// selectors `selectors` (id, table selectors); checks the tables the scan needs and
    /// latches each component's quantisation table. Returns the number of slots.
    fn slots(
        &mut self,
        selectors: &[u8],
        mode: Mode,
        slots: &mut [BlockSlot; 10],
    ) -> Option<usize> {
        let frame = self.frame.as_mut()?;
        let single = selectors.len() == 2;
        let mut nslots = 0;
        for (i, sel) in selectors.chunks_exact(2).enumerate() {
            let ci = frame.comps.iter().position(|c| c.id == sel[0])?;
            let comp = frame.comps.get_mut(ci)?;
            let (td, ta) = (usize::from(sel[1] >> 4), usize::from(sel[1] & 15));
            let refine = mode == Mode::DcRefine;
            if (!refine && self.dc.get(td)?.is_none())
                || (!frame.progressive && self.ac.get(ta)?.is_none())
            {
                return None;
            }
            if comp.q.is_none() {
                comp.q = Some((*self.q.get(comp.tq)?)?);
            }
            comp.seen |= !refine;
            let (mw, mh) = if single { (1, 1) } else { (comp.h, comp.v) };
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
        Some(nslots)
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

/// What decoding one block slot needs, resolved once per scan.
#[derive(Clone, Copy, Default)]
struct Tables<'h> {
    /// DC Huffman table (absent for refinement scans).
    dc: Option<&'h Huffman>,
    /// AC Huffman table (absent in progressive scans).
    ac: Option<&'h Huffman>,
    /// [`Mode::Column`] and [`Mode::Row`]: quantisation values of frequency 0 and
    /// of the six of [`picks`].
    q: [i32; 7],
    /// Samples per block along the reduced-by-4 axis (2 or 4).
    n: usize,
}

/// Zigzag positions of frequencies 1, 2, 3, 5, 6, 7 down the first column
/// ([`Mode::Column`]) or along the first row ([`Mode::Row`]) of coefficients.
const fn picks(mode: Mode) -> [usize; 6] {
    match mode {
        Mode::Column => [2, 3, 9, 20, 21, 35],
        _ => [1, 5, 6, 15, 27, 28],
    }
}

/// Decodes one scan's entropy-coded data; returns where it ends.
pub(super) fn decode_scan<K: Kind>(
    data: &[u8],
    pos: usize,
    comps: &mut [Component],
    scan: &Scan,
    dc: &[Option<Box<Huffman>>; 4],
    ac: &[Option<Box<Huffman>>; 4],
) -> Option<usize> {
    let mut tables = [Tables::default(); 10];
    for (t, s) in tables.iter_mut().zip(scan.slots) {
        let comp = comps.get(s.comp)?;
        if matches!(K::MODE, Mode::Column | Mode::Row) {
            let table = comp.q.as_ref()?;
            t.q[0] = table[0];
            for (q, &p) in t.q[1..].iter_mut().zip(&picks(K::MODE)) {
                *q = table[p];
            }
        }
        t.dc = dc.get(s.td)?.as_deref();
        t.ac = ac.get(s.ta)?.as_deref();
        t.n = comp.per.0.max(comp.per.1);
    }
    let mut bits = Bits::new(data, pos);
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
            for (s, t) in scan.slots.iter().zip(&tables) {
                let comp = comps.get_mut(s.comp)?;
                let (bx, by) = (mx * s.mw + s.dx, my * s.mh + s.dy);
                let pred = preds.get_mut(s.pred)?;
                decode_block::<K>(&mut bits, &mut rec, comp, (bx, by), pred, t, scan.al)?;
            }
        }
        if bits.overread() {
            return None;
        }
    }
    Some(bits.pos)
}

/// Decodes the block at `(bx, by)` of `comp` into its coefficient plane.
#[inline(always)]
fn decode_block<K: Kind>(
    bits: &mut Bits,
    rec: &mut Record,
    comp: &mut Component,
    (bx, by): (usize, usize),
    pred: &mut i32,
    t: &Tables,
    al: u32,
) -> Option<()> {
    match K::MODE {
        Mode::Sequential => {
            *pred = pred.wrapping_add(bits.dc_diff(t.dc?)?);
            *comp.coefs.get_mut(by * comp.stride + bx)? = *pred as i16;
            bits.skip_ac::<false>(t.ac?, 1, rec)
        }
        Mode::DcFirst => {
            *pred = pred.wrapping_add(bits.dc_diff(t.dc?)?);
            *comp.coefs.get_mut(by * comp.stride + bx)? = pred.wrapping_shl(al) as i16;
            Some(())
        }
        Mode::DcRefine => {
            let coef = comp.coefs.get_mut(by * comp.stride + bx)?;
            bits.ensure();
            if bits.buf >> 63 != 0 {
                *coef |= 1 << al;
            }
            bits.consume(1);
            Some(())
        }
        Mode::Column | Mode::Row => {
            *pred = pred.wrapping_add(bits.dc_diff(t.dc?)?);
            let n = t.n;
            let (first, step) = if K::MODE == Mode::Column {
                (by * n * comp.stride + bx, comp.stride)
            } else {
                (by * n * comp.stride + bx * n, 1)
            };
            few_samples::<K>(bits, rec, *pred, t, comp.coefs.get_mut(first..)?, step)
        }
        Mode::Skipped => None,
    }
}

/// [`Mode::Column`] and [`Mode::Row`]: reads the block's AC symbols up to the last
/// frequency its `n`-point inverse DCT needs and writes the `n` samples to `out`,
/// `step` apart.
#[inline(always)]
fn few_samples<K: Kind>(
    bits: &mut Bits,
    rec: &mut Record,
    dc: i32,
    t: &Tables,
    out: &mut [i16],
    step: usize,
) -> Option<()> {
    let pick = picks(K::MODE);
    let quant = t.q;
    // Dequantised as libjpeg-turbo's SSE2 code does it, in 16 bits.
    let x0 = i32::from(dc.wrapping_mul(quant[0]) as i16);
    let x =
        |rec: &Record, i: usize| i32::from(rec.value(pick[i]).wrapping_mul(quant[i + 1]) as i16);
    if t.n == 2 {
        for i in [0, 2, 3, 5] {
            rec.0[pick[i] + 1] = 0;
        }
        bits.skip_ac::<true>(t.ac?, 1, rec)?;
        let x = |i| x(rec, i);
        let [top, bottom] = idct2(x0, [x(0), x(2), x(3), x(5)]);
        *out.first_mut()? = top;
        *out.get_mut(step)? = bottom;
    } else {
        for p in pick {
            rec.0[p + 1] = 0;
        }
        bits.skip_ac::<true>(t.ac?, 1, rec)?;
        let x = |i| x(rec, i);
        let v = idct4(x0, [x(0), x(1), x(2), x(3), x(4), x(5)]);
        for (i, v) in v.into_iter().enumerate() {
            *out.get_mut(i * step)? = v;
        }
    }
    Some(())
}
