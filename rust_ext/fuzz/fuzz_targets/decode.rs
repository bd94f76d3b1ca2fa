//! Any bytes through the whole decode entry point: header, limits, every
//! decoder (libjpeg-turbo, the few-coefficient JPEG paths, PNG, WebP, GIF,
//! BMP), orientation, resize and tensor writing. Must return Ok or an Err,
//! never panic, hang or read out of bounds.
//!
//! The first input byte is a knob: its low four bits pick how many times
//! smaller than the image the output is on each axis (1, 2, 4 or 8, so that
//! every JPEG reduction, uniform or not, is reached), the next two the resize
//! mode, the top two the channels and layout.

#![no_main]

use _native::{
    preprocess_batch, probe, Color, DType, Filter, Layout, Limits, Output, ResizeMode, Spec,
    Target,
};
use libfuzzer_sys::fuzz_target;

/// Tighter than the service's defaults so that a fuzzer's huge headers fail
/// fast instead of allocating gigabytes.
const LIMITS: Limits = Limits {
    max_bytes: 4 * 1024 * 1024,
    max_width: 4096,
    max_height: 4096,
    max_pixels: 4_000_000,
};

/// Largest output side the target asks for.
const MAX_SIDE: u32 = 512;

fuzz_target!(|data: &[u8]| {
    let Some((&knob, image)) = data.split_first() else {
        return;
    };
    let (width, height) = probe(image, &LIMITS).map_or((32, 32), |h| (h.width, h.height));
    let factor = |bits: u8| [1, 2, 4, 8][usize::from(bits & 3)];
    let out_w = (width / factor(knob)).clamp(1, MAX_SIDE);
    let out_h = (height / factor(knob >> 2)).clamp(1, MAX_SIDE);
    let mode = match (knob >> 4) & 3 {
        0 => ResizeMode::Stretch,
        1 => ResizeMode::Letterbox,
        2 => ResizeMode::Crop,
        _ => ResizeMode::ShorterCrop {
            shorter_side: out_w.max(out_h) + 16,
        },
    };
    let spec = Spec {
        target: Target {
            width: out_w,
            height: out_h,
            mode,
            filter: [Filter::Bilinear, Filter::Area, Filter::Lanczos][usize::from(knob % 3)],
            pad_value: 0,
        },
        background: [255, 255, 255],
        output: Output {
            color: if knob & 0x40 == 0 { Color::Rgb } else { Color::Gray },
            layout: if knob & 0x80 == 0 { Layout::Hwc } else { Layout::Chw },
            dtype: DType::U8,
            ..Output::default()
        },
    };
    let _ = preprocess_batch(&[image], &spec, &LIMITS);
});
