//! Image decode and resize for tfs-adapter: JPEG/PNG bytes to an RGB
//! model-input tensor, plus the transform that maps boxes back.
//!
//! Everything but `python` is plain Rust with no knowledge of Python; the
//! `python` module is the thin PyO3 layer exposed as `adapter._native`.

pub mod decode;
pub mod error;
pub mod format;
pub mod limits;
pub mod preprocess;
mod python;
pub mod resize;
pub mod tensor;

pub use error::{Error, Limit};
pub use format::{Format, Header};
pub use limits::Limits;
pub use preprocess::{preprocess, probe, Preprocessed};
pub use resize::{ResizeMode, Target, Transform};
pub use tensor::{DType, Tensor, TensorData};
