//! After the model: decoding raw detector heads and non-maximum suppression.
//!
//! Pure Rust on borrowed `f32` buffers (the model server's answer, never
//! copied); the PyO3 layer releases the GIL around it.

pub mod nms;
pub mod yolo;
