//! Image decode and resize for tfs-adapter: JPEG, PNG, WebP, GIF and BMP
//! bytes to model-input tensors, plus the transform that maps boxes back.
//!
//! Everything but `python` is plain Rust with no knowledge of Python; the
//! `python` module is the thin PyO3 layer exposed as `adapter._native`.
//!
//! Modules import only those before them in this order (no cycles):
//!
//! 1. `image`: the shared plain data (`Format`, `Header`, `RgbImage`, `Reduction`)
//! 2. `error`, then `orientation`, `tensor`
//! 3. `jpeg`: the JPEG marker walk (`jpeg::markers::Markers`, once per image:
//!    header, completeness, orientation and metadata trimming all read it) and
//!    the few-coefficient decoder (bitstream, Huffman, frame, scan, IDCT, output)
//! 4. `format`: sniffing and header reading for every format
//! 5. `limits`, then `decode` (libjpeg-turbo, `jpeg`, the `image` crate), `resize`
//! 6. `preprocess`: the whole pipeline; `postprocess` (needs only `error`):
//!    YOLO head decoding and class-aware NMS on the model's answer
//! 7. `python`, the PyO3 layer

pub mod decode;
pub mod error;
pub mod format;
pub mod image;
mod jpeg;
pub mod limits;
pub mod orientation;
pub mod postprocess;
pub mod preprocess;
mod python;
pub mod resize;
pub mod tensor;

pub use error::{Error, Limit};
pub use image::{Format, Header, Reduction, RgbImage};
pub use limits::Limits;
pub use orientation::Orientation;
pub use preprocess::{
    decode_upright, preprocess_batch, preprocess_into, preprocess_one, probe, Placed, Spec, Upright,
};
pub use resize::{Filter, ResizeMode, Target, Transform};
pub use tensor::{Color, DType, Layout, Output, Slot, TensorData};
