//! The model-input tensor: the upright RGB8 canvas written out in the model's
//! channel order, layout, element type and normalization.

/// Element type of the tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DType {
    /// `uint8`, values 0..=255 (the default).
    #[default]
    U8,
    /// `float32`: `(value - shift) * scale + offset` per channel (identity unless normalized).
    F32,
}

/// Channels and their order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Color {
    /// Red, green, blue (the default).
    #[default]
    Rgb,
    /// Blue, green, red (OpenCV and Caffe models).
    Bgr,
    /// One channel, ITU-R 601-2 luma as Pillow's `convert("L")`.
    Gray,
}

impl Color {
    /// Channels per pixel: 3, or 1 for gray.
    #[must_use]
    pub fn channels(self) -> usize {
        match self {
            Self::Gray => 1,
            Self::Rgb | Self::Bgr => 3,
        }
    }
}

/// Where the channel axis goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Layout {
    /// `(height, width, channels)`: TensorFlow's default (the default).
    #[default]
    Hwc,
    /// `(channels, height, width)`: PyTorch and ONNX exports.
    Chw,
}

/// How the canvas becomes tensor elements.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Output {
    /// Channels and order.
    pub color: Color,
    /// Channel axis position.
    pub layout: Layout,
    /// Element type.
    pub dtype: DType,
    /// `float32` only: per-channel value subtracted first (a mean), in output channel order.
    pub shift: [f64; 3],
    /// `float32` only: per-channel multiplier (one over a standard deviation).
    pub scale: [f64; 3],
    /// `float32` only: per-channel value added last.
    pub offset: [f64; 3],
}

impl Default for Output {
    fn default() -> Self {
        Self {
            color: Color::Rgb,
            layout: Layout::Hwc,
            dtype: DType::U8,
            shift: [0.0; 3],
            scale: [1.0; 3],
            offset: [0.0; 3],
        }
    }
}

/// A tensor's elements, row-major.
#[derive(Debug, Clone, PartialEq)]
pub enum TensorData {
    /// `uint8` elements.
    U8(Vec<u8>),
    /// `float32` elements.
    F32(Vec<f32>),
}

/// A mutable view of one image's slot in a (batch) tensor.
#[derive(Debug)]
pub enum Slot<'a> {
    /// `uint8` elements.
    U8(&'a mut [u8]),
    /// `float32` elements.
    F32(&'a mut [f32]),
}

impl TensorData {
    /// `len` elements of `dtype`, zero.
    #[must_use]
    pub fn zeros(dtype: DType, len: usize) -> Self {
        match dtype {
            DType::U8 => Self::U8(vec![0; len]),
            DType::F32 => Self::F32(vec![0.0; len]),
        }
    }

    /// The whole tensor as one slot.
    pub fn whole(&mut self) -> Slot<'_> {
        match self {
            Self::U8(v) => Slot::U8(v),
            Self::F32(v) => Slot::F32(v),
        }
    }

    /// The tensor cut into `count` equal consecutive slots.
    pub fn slots(&mut self, count: usize) -> Vec<Slot<'_>> {
        let len = match self {
            Self::U8(v) => v.len(),
            Self::F32(v) => v.len(),
        };
        let each = len.checked_div(count).unwrap_or(0).max(1);
        match self {
            Self::U8(v) => v.chunks_mut(each).map(Slot::U8).collect(),
            Self::F32(v) => v.chunks_mut(each).map(Slot::F32).collect(),
        }
    }
}

impl Output {
    /// Elements per image of `width x height`.
    #[must_use]
    pub fn len(&self, width: usize, height: usize) -> usize {
        width * height * self.color.channels()
    }

    /// Writes the RGB8 `canvas` of `width x height` into `slot`.
    pub fn write(&self, canvas: &[u8], width: usize, height: usize, slot: &mut Slot<'_>) {
        let plane = width * height;
        let canvas = canvas.get(..plane * 3).unwrap_or(canvas);
        match slot {
            Slot::U8(out) => {
                if (self.color, self.layout) == (Color::Rgb, Layout::Hwc)
                    && out.len() == canvas.len()
                {
                    out.copy_from_slice(canvas);
                } else {
                    self.convert(canvas, plane, out, |value, _| value);
                }
            }
            Slot::F32(out) => {
                let table = self.float_table();
                self.convert(canvas, plane, out, |value, c| table[c][usize::from(value)]);
            }
        }
    }

    /// Writes each pixel's output channels, `element(value, channel)` each, in the layout.
    #[inline]
    fn convert<T>(
        &self,
        canvas: &[u8],
        plane: usize,
        out: &mut [T],
        element: impl Fn(u8, usize) -> T,
    ) {
        let pixels = canvas.chunks_exact(3);
        let [first, second, third] = match self.color {
            Color::Gray => {
                // One channel: the same in either layout.
                for (o, p) in out.iter_mut().zip(pixels) {
                    *o = element(luma(p[0], p[1], p[2]), 0);
                }
                return;
            }
            Color::Rgb => [0, 1, 2],
            Color::Bgr => [2, 1, 0],
        };
        match self.layout {
            Layout::Hwc => {
                for (o, p) in out.chunks_exact_mut(3).zip(pixels) {
                    o[0] = element(p[first], 0);
                    o[1] = element(p[second], 1);
                    o[2] = element(p[third], 2);
                }
            }
            Layout::Chw => {
                let (a, rest) = out.split_at_mut(plane.min(out.len()));
                let (b, c) = rest.split_at_mut(plane.min(rest.len()));
                for (((a, b), c), p) in a.iter_mut().zip(b).zip(c).zip(pixels) {
                    *a = element(p[first], 0);
                    *b = element(p[second], 1);
                    *c = element(p[third], 2);
                }
            }
        }
    }

    /// Each channel's float for each of the 256 values, computed in `f64` and
    /// rounded once, so normalized outputs are as exact as `float32` allows.
    #[allow(
        clippy::cast_possible_truncation,
        reason = "rounding f64 to the f32 output is the point"
    )]
    fn float_table(&self) -> [[f32; 256]; 3] {
        let mut table = [[0.0; 256]; 3];
        for (c, row) in table.iter_mut().enumerate() {
            for (v, entry) in (0u8..=255).zip(row.iter_mut()) {
                *entry = ((f64::from(v) - self.shift[c]) * self.scale[c] + self.offset[c]) as f32;
            }
        }
        table
    }

    /// Fills `slot` as if the whole canvas were `pad_value` (a failed batch item).
    pub fn fill(&self, pad_value: u8, width: usize, height: usize, slot: &mut Slot<'_>) {
        let canvas = vec![pad_value; width * height * 3];
        self.write(&canvas, width, height, slot);
    }
}

/// Pillow's `L = R * 299/1000 + G * 587/1000 + B * 114/1000`, in its fixed point.
#[inline]
fn luma(r: u8, g: u8, b: u8) -> u8 {
    let l = (u32::from(r) * 19595 + u32::from(g) * 38470 + u32::from(b) * 7471 + 0x8000) >> 16;
    u8::try_from(l).unwrap_or(u8::MAX)
}

#[cfg(test)]
#[allow(clippy::float_cmp, reason = "exact small integers")]
mod tests {
    use super::*;

    /// A 2x1 canvas: one red-ish pixel, one blue-ish.
    const CANVAS: [u8; 6] = [200, 10, 20, 1, 2, 250];

    fn write(output: Output) -> TensorData {
        let mut data = TensorData::zeros(output.dtype, output.len(2, 1));
        let mut slots = data.slots(1);
        output.write(&CANVAS, 2, 1, &mut slots[0]);
        drop(slots);
        data
    }

    #[test]
    fn rgb_bgr_gray_and_layouts() {
        let rgb = Output::default();
        assert_eq!(write(rgb), TensorData::U8(CANVAS.to_vec()));
        let bgr = Output {
            color: Color::Bgr,
            ..rgb
        };
        assert_eq!(write(bgr), TensorData::U8(vec![20, 10, 200, 250, 2, 1]));
        let chw = Output {
            layout: Layout::Chw,
            ..rgb
        };
        assert_eq!(write(chw), TensorData::U8(vec![200, 1, 10, 2, 20, 250]));
        let gray = Output {
            color: Color::Gray,
            ..rgb
        };
        assert_eq!(write(gray), TensorData::U8(vec![68, 30]));
    }

    #[test]
    fn float_normalization_per_output_channel() {
        let out = Output {
            dtype: DType::F32,
            color: Color::Bgr,
            shift: [0.0, 0.0, 10.0],
            scale: [0.5, 1.0, 2.0],
            offset: [-1.0, 0.0, 1.0],
            ..Output::default()
        };
        assert_eq!(
            write(out),
            TensorData::F32(vec![9.0, 10.0, 381.0, 124.0, 2.0, -17.0])
        );
    }

    #[test]
    fn slots_split_a_batch() {
        let mut data = TensorData::zeros(DType::U8, 12);
        let slots = data.slots(3);
        assert_eq!(slots.len(), 3);
        assert!(slots
            .iter()
            .all(|s| matches!(s, Slot::U8(v) if v.len() == 4)));
    }
}
