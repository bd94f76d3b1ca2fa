//! The few-coefficient decoder against libjpeg-turbo, on encoded photos and
//! broken files.

#![allow(clippy::cast_precision_loss)]

use super::huffman::build_huffman;
use super::output::{upsample, Filter};
use super::{decode_scaled, Scaled};
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
