//! The PyO3 layer, `adapter._native`: compiled objects built once
//! (`Limits`, `Preprocessor`), results with named fields (`Placement`,
//! `ImageInfo`); releases the GIL, hands buffers to NumPy without a copy and
//! maps [`Error`] to exceptions.
//!
//! The exception classes belong to `adapter.imaging` (Python owns the
//! hierarchy); they are imported on first use.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

use ndarray::{Array3, Array4};
use numpy::IntoPyArray;
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;

use crate::{
    decode_upright, preprocess_batch, probe, Color, DType, Error, Filter, Layout, Limits, Output,
    Placed, ResizeMode, Spec, Target, TensorData, Transform,
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
        color, layout, dtype, shift, scale, offset, limits
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
    ) -> PyResult<Self> {
        let mode = match resize {
            "resize_shorter_crop" => ResizeMode::ShorterCrop { shorter_side },
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
        let output = spec.output;
        let (count, channels) = (images.len(), output.color.channels());
        let (height, width) = (spec.target.height as usize, spec.target.width as usize);
        let shape = match output.layout {
            Layout::Hwc => [count, height, width, channels],
            Layout::Chw => [count, channels, height, width],
        };
        let array = match data {
            TensorData::U8(v) => into_numpy(py, shape, v)?,
            TensorData::F32(v) => into_numpy(py, shape, v)?,
        };
        let items = results
            .into_iter()
            .map(|result| match result {
                Ok(placed) => Ok(Py::new(py, Placement::from(&placed))?.into_any()),
                Err(err) => Ok(PyErr::from(err).into_value(py).into_any()),
            })
            .collect::<PyResult<_>>()?;
        Ok((array, items))
    }
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
    use super::{decode_full, probe_header, ImageInfo, Placement, Preprocessor, PyLimits};
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
