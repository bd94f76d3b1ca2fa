//! Any bytes through the whole decode entry point: header, limits, every
//! decoder (libjpeg-turbo, the DC-only JPEG path, PNG, WebP, GIF, BMP),
//! orientation, resize and tensor writing. Must return Ok or an Err, never
//! panic, hang or read out of bounds.
//!
//! The first input byte picks the output size and mode, so that every JPEG
//! reduction (1, 1/2, 1/4, 1/8) and every resize mode is reached.

#![no_main]

use _native::{
    preprocess_batch, Color, DType, Filter, Layout, Limits, Output, ResizeMode, Spec, Target,
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

fuzz_target!(|data: &[u8]| {
    let Some((&knob, image)) = data.split_first() else {
        return;
    };
    let side = [1, 7, 32, 224][usize::from(knob & 3)];
    let mode = match (knob >> 2) & 3 {
        0 => ResizeMode::Stretch,
        1 => ResizeMode::Letterbox,
        2 => ResizeMode::Crop,
        _ => ResizeMode::ShorterCrop {
            shorter_side: side + 32,
        },
    };
    let spec = Spec {
        target: Target {
            width: side,
            height: side / 2 + 1,
            mode,
            filter: [Filter::Bilinear, Filter::Area, Filter::Lanczos][usize::from(knob >> 4) % 3],
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
