//! The PyO3 layer, `adapter._native`: compiled objects built once
//! (`Limits`, `Preprocessor`), results with named fields (`Placement`,
//! `ImageInfo`); releases the GIL, hands buffers to NumPy without a copy and
//! maps [`Error`] to exceptions.
//!
//! The exception classes belong to `adapter.imaging` (Python owns the
//! hierarchy); they are imported on first use.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

use ndarray::{Array1, Array2, Array3, Array4};
use numpy::{IntoPyArray, PyReadonlyArray1, PyReadonlyArray2, PyReadonlyArrayDyn};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;

use crate::postprocess::nms::{suppress, Candidate};
use crate::postprocess::yolo::{self, Found, Head, Selection};
use crate::{
    decode_upright, preprocess_batch, preprocess_one, probe, Color, DType, Error, Filter, Layout,
    Limits, Output, Placed, ResizeMode, Spec, Target, TensorData, Transform,
};

static EMPTY_IMAGE: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static UNSUPPORTED_IMAGE: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static CORRUPT_IMAGE: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static IMAGE_TOO_LARGE: PyOnceLock<Py<PyType>> = PyOnceLock::new();

impl From<Error> for PyErr {
    #[cold]
    fn from(err: Error) -> Self {
        let (cell, name) = match &err {
            Error::Empty => (&EMPTY_IMAGE, "EmptyImage"),
            Error::UnsupportedFormat | Error::UnsupportedFeature { .. } => {
                (&UNSUPPORTED_IMAGE, "UnsupportedImage")
            }
            Error::Corrupt { .. } => (&CORRUPT_IMAGE, "CorruptImage"),
            Error::TooLarge { .. } => (&IMAGE_TOO_LARGE, "ImageTooLarge"),
            Error::InvalidArgument(_) => return PyValueError::new_err(err.to_string()),
            Error::Internal(_) => return PyRuntimeError::new_err(err.to_string()),
        };
        Python::attach(|py| match cell.import(py, "adapter.imaging", name) {
            Ok(class) => PyErr::from_type(class.clone(), err.to_string()),
            Err(import_error) => import_error,
        })
    }
}

/// The limits every call checks, built once (`adapter.imaging.Limits` holds one).
///
/// Keyword-only; each defaults to [`Limits::DEFAULT`], the one place the
/// defaults are written.
#[pyclass(frozen, eq, module = "adapter._native", name = "Limits")]
#[derive(Clone, PartialEq)]
struct PyLimits(Limits);

#[pymethods]
impl PyLimits {
    #[new]
    #[pyo3(signature = (
        *,
        max_bytes = Limits::DEFAULT.max_bytes,
        max_width = Limits::DEFAULT.max_width,
        max_height = Limits::DEFAULT.max_height,
        max_pixels = Limits::DEFAULT.max_pixels,
    ))]
    fn new(max_bytes: u64, max_width: u32, max_height: u32, max_pixels: u64) -> Self {
        Self(Limits {
            max_bytes,
            max_width,
            max_height,
            max_pixels,
        })
    }

    #[getter]
    fn max_bytes(&self) -> u64 {
        self.0.max_bytes
    }

    #[getter]
    fn max_width(&self) -> u32 {
        self.0.max_width
    }

    #[getter]
    fn max_height(&self) -> u32 {
        self.0.max_height
    }

    #[getter]
    fn max_pixels(&self) -> u64 {
        self.0.max_pixels
    }
}

/// A compiled preprocessing: the [`Spec`] and [`Limits`] parsed once from the
/// registry's strings, then run on every request with the GIL released.
#[pyclass(frozen, module = "adapter._native", name = "Preprocessor")]
struct Preprocessor {
    spec: Spec,
    limits: Limits,
}

#[pymethods]
impl Preprocessor {
    #[new]
    #[pyo3(signature = (
        width, height, *, resize, shorter_side, filter, pad_value, background,
        color, layout, dtype, shift, scale, offset, limits, upscale = false
    ))]
    #[allow(
        clippy::too_many_arguments,
        reason = "mirrors the keyword-only Python signature, called once per model"
    )]
    #[allow(
        clippy::needless_pass_by_value,
        reason = "PyO3 extracts sequences into owned Vecs"
    )]
    fn new(
        width: u32,
        height: u32,
        resize: &str,
        shorter_side: u32,
        filter: &str,
        pad_value: u8,
        background: [u8; 3],
        color: &str,
        layout: &str,
        dtype: &str,
        shift: Vec<f64>,
        scale: Vec<f64>,
        offset: Vec<f64>,
        limits: &Bound<'_, PyLimits>,
        upscale: bool,
    ) -> PyResult<Self> {
        let mode = match resize {
            "resize_shorter_crop" => ResizeMode::ShorterCrop { shorter_side },
            // `width` is the longest side allowed (`max_side`).
            "fit" => ResizeMode::Fit { upscale },
            other => parse("resize mode", other, RESIZE_MODES)?,
        };
        let color = parse("color", color, COLORS)?;
        let channels = color.channels();
        let spec = Spec {
            target: Target {
                width,
                height,
                mode,
                filter: parse("filter", filter, FILTERS)?,
                pad_value,
            },
            background,
            output: Output {
                color,
                layout: parse("layout", layout, LAYOUTS)?,
                dtype: parse("dtype", dtype, DTYPES)?,
                shift: per_channel("shift", &shift, channels)?,
                scale: per_channel("scale", &scale, channels)?,
                offset: per_channel("offset", &offset, channels)?,
            },
        };
        Ok(Self {
            spec,
            limits: limits.get().0,
        })
    }

    /// Decodes each image and writes it into one batch tensor.
    ///
    /// Returns `(array, items)`: the array has shape `(n, height, width, c)`
    /// or `(n, c, height, width)` and owns the Rust buffer; `items[i]` is the
    /// [`Placement`] of image `i` or its exception (its slot holds padding).
    #[allow(
        clippy::needless_pass_by_value,
        reason = "PyO3 extracts sequences into owned Vecs"
    )]
    fn run<'py>(
        &self,
        py: Python<'py>,
        images: Vec<PyBackedBytes>,
    ) -> PyResult<(Bound<'py, PyAny>, Vec<Py<PyAny>>)> {
        let (spec, limits) = (&self.spec, &self.limits);
        let (data, results) = py.detach(|| guarded(|| preprocess_batch(&images, spec, limits)))?;
        let size = (spec.target.width, spec.target.height);
        let array = self.array(py, images.len(), size, data)?;
        let items = results
            .into_iter()
            .map(|result| match result {
                Ok(placed) => Ok(Py::new(py, Placement::from(&placed))?.into_any()),
                Err(err) => Ok(PyErr::from(err).into_value(py).into_any()),
            })
            .collect::<PyResult<_>>()?;
        Ok((array, items))
    }

    /// Decodes one image into an array of its own, `(1, height, width, c)` or
    /// `(1, c, height, width)`: for `resize="fit"`, the image's fitted size.
    /// Returns `(array, placement)`; a bad image raises its exception.
    #[allow(
        clippy::needless_pass_by_value,
        reason = "PyO3 extracts the bytes into an owned handle"
    )]
    fn run_one<'py>(
        &self,
        py: Python<'py>,
        data: PyBackedBytes,
    ) -> PyResult<(Bound<'py, PyAny>, Placement)> {
        let (spec, limits) = (&self.spec, &self.limits);
        let (tensor, size, placed) =
            py.detach(|| guarded(|| preprocess_one(&data, spec, limits)))?;
        Ok((self.array(py, 1, size, tensor)?, Placement::from(&placed)))
    }
}

impl Preprocessor {
    /// `data`, `count` images of `(width, height)`, as a NumPy array in the spec's layout.
    fn array<'py>(
        &self,
        py: Python<'py>,
        count: usize,
        (width, height): (u32, u32),
        data: TensorData,
    ) -> PyResult<Bound<'py, PyAny>> {
        let channels = self.spec.output.color.channels();
        let (height, width) = (height as usize, width as usize);
        let shape = match self.spec.output.layout {
            Layout::Hwc => [count, height, width, channels],
            Layout::Chw => [count, channels, height, width],
        };
        match data {
            TensorData::U8(v) => into_numpy(py, shape, v),
            TensorData::F32(v) => into_numpy(py, shape, v),
        }
    }
}

/// A YOLO head's layout, built once per model: `decode` turns one image's
/// raw output into kept boxes, the GIL released, reading the buffer in place.
#[pyclass(frozen, module = "adapter._native", name = "YoloHead")]
struct YoloHead {
    layout: yolo::Layout,
    classes: usize,
    objectness: bool,
    normalized: bool,
}

#[pymethods]
impl YoloHead {
    #[new]
    #[pyo3(signature = (*, layout, classes, objectness, normalized))]
    fn new(layout: &str, classes: usize, objectness: bool, normalized: bool) -> PyResult<Self> {
        if classes == 0 {
            return Err(PyValueError::new_err(
                "a YOLO head needs at least one class",
            ));
        }
        Ok(Self {
            layout: parse("YOLO layout", layout, YOLO_LAYOUTS)?,
            classes,
            objectness,
            normalized,
        })
    }

    /// `(boxes, scores, classes)`: `[K, 4]` float32 corners `x0, y0, x1, y1`
    /// in input pixels, `[K]` float32 and `[K]` int64, best first. `output`
    /// is one image's C-contiguous float32 matrix (the batch axis dropped).
    #[pyo3(signature = (output, *, input_width, input_height, min_score, iou_threshold, max_results))]
    #[allow(
        clippy::too_many_arguments,
        clippy::needless_pass_by_value,
        reason = "mirrors the keyword-only Python signature; PyO3 extracts owned handles"
    )]
    fn decode<'py>(
        &self,
        py: Python<'py>,
        output: PyReadonlyArrayDyn<'py, f32>,
        input_width: f32,
        input_height: f32,
        min_score: f32,
        iou_threshold: f32,
        max_results: usize,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>, Bound<'py, PyAny>)> {
        let values = 4 + usize::from(self.objectness) + self.classes;
        let data = output.as_slice().map_err(|_| not_contiguous())?;
        let head = Head {
            layout: self.layout,
            anchors: data.len() / values,
            classes: self.classes,
            objectness: self.objectness,
            normalized: self.normalized,
            input_size: (input_width, input_height),
        };
        let selection = Selection {
            min_score,
            iou_threshold,
            max_results,
        };
        let found = py.detach(|| guarded(|| yolo::decode(data, &head, &selection)))?;
        found_arrays(py, &found)
    }
}

const YOLO_LAYOUTS: &[(&str, yolo::Layout)] = &[
    ("channels_first", yolo::Layout::ChannelsFirst),
    ("anchors_first", yolo::Layout::AnchorsFirst),
];

#[cold]
fn not_contiguous() -> PyErr {
    PyValueError::new_err("the array must be C-contiguous")
}

/// Kept boxes as NumPy arrays: corners `[K, 4]`, scores `[K]`, classes `[K]` int64.
fn found_arrays<'py>(
    py: Python<'py>,
    found: &[Found],
) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>, Bound<'py, PyAny>)> {
    let corners: Vec<f32> = found.iter().flat_map(|f| f.corners).collect();
    let boxes = Array2::from_shape_vec((found.len(), 4), corners).map_err(Error::internal)?;
    let scores: Array1<f32> = found.iter().map(|f| f.score).collect();
    let classes: Array1<i64> = found.iter().map(|f| i64::from(f.class)).collect();
    Ok((
        boxes.into_pyarray(py).into_any(),
        scores.into_pyarray(py).into_any(),
        classes.into_pyarray(py).into_any(),
    ))
}

/// Class-aware greedy non-maximum suppression, as `tf.image.non_max_suppression`
/// decides it, per class: the indices kept (int64), best first. `boxes` is
/// `[K, 4]` float32 opposite corners, `scores` `[K]` float32 (kept when at
/// least `min_score`), `classes` `[K]` int64 or None (one class). The GIL is
/// released.
#[pyfunction]
#[allow(
    clippy::needless_pass_by_value,
    reason = "PyO3 extracts owned array handles"
)]
#[pyo3(signature = (boxes, scores, classes, *, iou_threshold, max_results, min_score = f32::NEG_INFINITY))]
fn nms<'py>(
    py: Python<'py>,
    boxes: PyReadonlyArray2<'py, f32>,
    scores: PyReadonlyArray1<'py, f32>,
    classes: Option<PyReadonlyArray1<'py, i64>>,
    iou_threshold: f32,
    max_results: usize,
    min_score: f32,
) -> PyResult<Bound<'py, PyAny>> {
    let corners = boxes.as_slice().map_err(|_| not_contiguous())?;
    let scores = scores.as_slice().map_err(|_| not_contiguous())?;
    let classes = match &classes {
        Some(c) => Some(c.as_slice().map_err(|_| not_contiguous())?),
        None => None,
    };
    let count = scores.len();
    if corners.len() != count * 4 || classes.is_some_and(|c| c.len() != count) {
        return Err(PyValueError::new_err(
            "boxes must be [K, 4] and scores and classes [K]",
        ));
    }
    let kept = py.detach(|| {
        let mut index = Vec::new();
        let mut candidates = Vec::new();
        for (i, (&score, four)) in scores.iter().zip(corners.chunks_exact(4)).enumerate() {
            if score >= min_score {
                index.push(i);
                candidates.push(Candidate {
                    corners: [four[0], four[1], four[2], four[3]],
                    score,
                    class: classes.map_or(0, |c| c[i]),
                });
            }
        }
        suppress(&candidates, iou_threshold, max_results)
            .into_iter()
            .map(|k| i64::try_from(index[k]).unwrap_or(i64::MAX))
            .collect::<Array1<i64>>()
    });
    Ok(kept.into_pyarray(py).into_any())
}

/// Where one image went: its format, its size as stored and as displayed
/// (after the EXIF orientation), and the transform from tensor pixels back to
/// the displayed image, `x = (x_tensor - pad_x) / scale_x`.
#[pyclass(frozen, get_all, module = "adapter._native", name = "Placement")]
struct Placement {
    format: &'static str,
    width: u32,
    height: u32,
    stored_width: u32,
    stored_height: u32,
    orientation: u8,
    scale_x: f64,
    scale_y: f64,
    pad_x: f64,
    pad_y: f64,
}

impl From<&Placed> for Placement {
    fn from(placed: &Placed) -> Self {
        let (width, height) = placed.displayed_size();
        let (header, t) = (placed.header, placed.transform);
        Self {
            format: header.format.name(),
            width,
            height,
            stored_width: header.width,
            stored_height: header.height,
            orientation: placed.orientation.exif(),
            scale_x: t.scale_x,
            scale_y: t.scale_y,
            pad_x: t.pad_x,
            pad_y: t.pad_y,
        }
    }
}

/// What a header says: the format and the stored size in pixels.
#[pyclass(frozen, get_all, module = "adapter._native", name = "ImageInfo")]
struct ImageInfo {
    format: &'static str,
    width: u32,
    height: u32,
}

const RESIZE_MODES: &[(&str, ResizeMode)] = &[
    ("stretch", ResizeMode::Stretch),
    ("letterbox", ResizeMode::Letterbox),
    ("crop", ResizeMode::Crop),
];
const FILTERS: &[(&str, Filter)] = &[
    ("bilinear", Filter::Bilinear),
    ("area", Filter::Area),
    ("lanczos", Filter::Lanczos),
];
const COLORS: &[(&str, Color)] = &[
    ("rgb", Color::Rgb),
    ("bgr", Color::Bgr),
    ("gray", Color::Gray),
];
const LAYOUTS: &[(&str, Layout)] = &[("nhwc", Layout::Hwc), ("nchw", Layout::Chw)];
const DTYPES: &[(&str, DType)] = &[("uint8", DType::U8), ("float32", DType::F32)];

/// The value `name` stands for in `table`; `ValueError` naming `what` if none.
fn parse<T: Copy>(what: &str, name: &str, table: &[(&str, T)]) -> PyResult<T> {
    table
        .iter()
        .find(|(key, _)| *key == name)
        .map(|&(_, value)| value)
        .ok_or_else(|| PyValueError::new_err(format!("unknown {what} {name:?}")))
}

/// One value per output channel (three for RGB/BGR, one for gray, spread to three).
fn per_channel(name: &str, values: &[f64], channels: usize) -> PyResult<[f64; 3]> {
    match *values {
        [v] if channels == 1 => Ok([v; 3]),
        [a, b, c] if channels == 3 => Ok([a, b, c]),
        _ => Err(PyValueError::new_err(format!(
            "{name} needs {channels} value(s), got {}",
            values.len()
        ))),
    }
}

/// Reads the format and stored size from the header only.
#[pyfunction(name = "probe")]
fn probe_header(data: &[u8], limits: &Bound<'_, PyLimits>) -> PyResult<ImageInfo> {
    let header = guarded(|| probe(data, &limits.get().0))?;
    Ok(ImageInfo {
        format: header.format.name(),
        width: header.width,
        height: header.height,
    })
}

/// Decodes one image at full size, upright: `(array, placement)`, the array
/// `(height, width, 3)` RGB uint8 with alpha flattened onto `background`, the
/// placement's transform the identity. The GIL is released while decoding.
#[pyfunction(name = "decode")]
fn decode_full<'py>(
    py: Python<'py>,
    data: &[u8],
    background: [u8; 3],
    limits: &Bound<'_, PyLimits>,
) -> PyResult<(Bound<'py, PyAny>, Placement)> {
    let limits = limits.get().0;
    let upright = py.detach(|| guarded(|| decode_upright(data, &limits, background)))?;
    let placement = Placement::from(&Placed {
        header: upright.header,
        orientation: upright.orientation,
        transform: Transform {
            scale_x: 1.0,
            scale_y: 1.0,
            pad_x: 0.0,
            pad_y: 0.0,
        },
    });
    let image = upright.image;
    let shape = [image.height as usize, image.width as usize, 3];
    let array = Array3::from_shape_vec(shape, image.pixels).map_err(Error::internal)?;
    Ok((array.into_pyarray(py).into_any(), placement))
}

/// Moves `data` into a NumPy array of `shape` without copying it.
fn into_numpy<T: numpy::Element>(
    py: Python<'_>,
    shape: [usize; 4],
    data: Vec<T>,
) -> PyResult<Bound<'_, PyAny>> {
    let array = Array4::from_shape_vec(shape, data).map_err(Error::internal)?;
    Ok(array.into_pyarray(py).into_any())
}

/// Runs `f`, turning a panic (a bug, here or in a decoder) into [`Error::Internal`].
fn guarded<T>(f: impl FnOnce() -> Result<T, Error>) -> Result<T, Error> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|payload| Err(panic_error(&*payload)))
}

#[cold]
fn panic_error(payload: &(dyn Any + Send)) -> Error {
    let message = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("unknown panic");
    Error::Internal(format!("image pipeline panicked: {message}"))
}

/// Image decode and resize for `adapter.imaging`; private, import that instead.
#[pymodule]
mod _native {
    #[pymodule_export]
    use super::{
        decode_full, nms, probe_header, ImageInfo, Placement, Preprocessor, PyLimits, YoloHead,
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guarded_turns_panics_into_internal_errors() {
        let result: Result<(), Error> = guarded(|| panic!("decoder bug"));
        assert_eq!(
            result,
            Err(Error::Internal(
                "image pipeline panicked: decoder bug".into()
            ))
        );
        let formatted: Result<(), Error> = guarded(|| panic!("bad index {}", 7));
        assert!(matches!(formatted, Err(Error::Internal(m)) if m.ends_with("bad index 7")));
        assert_eq!(guarded(|| Ok(5)), Ok(5));
    }
}
