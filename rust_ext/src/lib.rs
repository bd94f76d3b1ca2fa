//! Image decode and resize for tfs-adapter: JPEG, PNG, WebP, GIF and BMP
//! bytes to model-input tensors, plus the transform that maps boxes back.
//!
//! Everything but `python` is plain Rust with no knowledge of Python; the
//! `python` module is the thin PyO3 layer exposed as `adapter._native`.

pub mod decode;
pub mod error;
pub mod format;
pub mod limits;
pub mod orientation;
pub mod preprocess;
mod python;
pub mod resize;
pub mod tensor;

pub use error::{Error, Limit};
pub use format::{Format, Header};
pub use limits::Limits;
pub use orientation::Orientation;
pub use preprocess::{
    decode_upright, preprocess_batch, preprocess_into, probe, Placed, Spec, Upright,
};
pub use resize::{Filter, Reduction, ResizeMode, Target, Transform};
pub use tensor::{Color, DType, Layout, Output, Slot, TensorData};
