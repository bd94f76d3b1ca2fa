//! The model-input tensor: shape `(height, width, 3)`, RGB, in the model's dtype.

/// Element type of the tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DType {
    /// `uint8`, values 0..=255 (the default).
    #[default]
    U8,
    /// `float32` holding the same 0..=255 values; no normalisation.
    F32,
}

/// The tensor's elements, row-major `(height, width, 3)`.
#[derive(Debug, Clone, PartialEq)]
pub enum TensorData {
    /// `uint8` elements.
    U8(Vec<u8>),
    /// `float32` elements.
    F32(Vec<f32>),
}

/// An RGB image laid out as a `(height, width, 3)` tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    /// Rows.
    pub height: usize,
    /// Columns.
    pub width: usize,
    /// `height * width * 3` elements.
    pub data: TensorData,
}

impl Tensor {
    /// Wraps packed RGB8 pixels, converting to `dtype`.
    #[must_use]
    pub fn from_rgb8(width: usize, height: usize, pixels: Vec<u8>, dtype: DType) -> Self {
        let data = match dtype {
            DType::U8 => TensorData::U8(pixels),
            DType::F32 => TensorData::F32(pixels.into_iter().map(f32::from).collect()),
        };
        Self {
            height,
            width,
            data,
        }
    }

    /// `(height, width, 3)`.
    #[must_use]
    pub fn shape(&self) -> (usize, usize, usize) {
        (self.height, self.width, 3)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float32_keeps_values() {
        let t = Tensor::from_rgb8(1, 2, vec![0, 1, 2, 128, 254, 255], DType::F32);
        assert_eq!(t.shape(), (2, 1, 3));
        assert_eq!(
            t.data,
            TensorData::F32(vec![0.0, 1.0, 2.0, 128.0, 254.0, 255.0])
        );
    }

    #[test]
    fn uint8_reuses_the_buffer() {
        let pixels = vec![7u8; 12];
        let ptr = pixels.as_ptr();
        let t = Tensor::from_rgb8(2, 2, pixels, DType::U8);
        let TensorData::U8(data) = t.data else {
            panic!("expected u8")
        };
        assert_eq!(data.as_ptr(), ptr);
    }
}
