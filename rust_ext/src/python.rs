//! The PyO3 layer, `adapter._native`: converts arguments, releases the GIL,
//! hands buffers to NumPy without a copy and maps [`Error`] to exceptions.
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
    ResizeMode, Spec, Target, TensorData,
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

/// Decodes each image and writes it into one batch tensor.
///
/// Returns `(array, items)`: the array has shape `(n, height, width, c)` or
/// `(n, c, height, width)` and owns the Rust buffer; `items[i]` is either
/// `(format, stored_width, stored_height, orientation, scale_x, scale_y,
/// pad_x, pad_y)` or the exception for image `i` (its slot holds padding).
/// The GIL is released while decoding and resizing.
#[pyfunction]
#[pyo3(signature = (
    images, width, height, *, resize, shorter_side, filter, pad_value, background,
    color, layout, dtype, shift, scale, offset, max_bytes, max_width, max_height, max_pixels
))]
#[allow(
    clippy::too_many_arguments,
    reason = "mirrors the keyword-only Python signature"
)]
#[allow(
    clippy::needless_pass_by_value,
    reason = "PyO3 extracts sequences into owned Vecs"
)]
fn preprocess<'py>(
    py: Python<'py>,
    images: Vec<PyBackedBytes>,
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
    max_bytes: u64,
    max_width: u32,
    max_height: u32,
    max_pixels: u64,
) -> PyResult<(Bound<'py, PyAny>, Vec<Py<PyAny>>)> {
    let mode = match resize {
        "stretch" => ResizeMode::Stretch,
        "letterbox" => ResizeMode::Letterbox,
        "crop" => ResizeMode::Crop,
        "resize_shorter_crop" => ResizeMode::ShorterCrop { shorter_side },
        other => return Err(invalid("resize mode", other)),
    };
    let filter = match filter {
        "bilinear" => Filter::Bilinear,
        "area" => Filter::Area,
        "lanczos" => Filter::Lanczos,
        other => return Err(invalid("filter", other)),
    };
    let color = match color {
        "rgb" => Color::Rgb,
        "bgr" => Color::Bgr,
        "gray" => Color::Gray,
        other => return Err(invalid("color", other)),
    };
    let layout = match layout {
        "nhwc" => Layout::Hwc,
        "nchw" => Layout::Chw,
        other => return Err(invalid("layout", other)),
    };
    let dtype = match dtype {
        "uint8" => DType::U8,
        "float32" => DType::F32,
        other => return Err(invalid("dtype", other)),
    };
    let channels = color.channels();
    let per_channel = |name: &str, values: &[f64]| -> PyResult<[f64; 3]> {
        match *values {
            [v] if channels == 1 => Ok([v; 3]),
            [a, b, c] if channels == 3 => Ok([a, b, c]),
            _ => Err(PyValueError::new_err(format!(
                "{name} needs {channels} value(s), got {}",
                values.len()
            ))),
        }
    };
    let spec = Spec {
        target: Target {
            width,
            height,
            mode,
            filter,
            pad_value,
        },
        background,
        output: Output {
            color,
            layout,
            dtype,
            shift: per_channel("shift", &shift)?,
            scale: per_channel("scale", &scale)?,
            offset: per_channel("offset", &offset)?,
        },
    };
    let limits = Limits {
        max_bytes,
        max_width,
        max_height,
        max_pixels,
    };
    let (data, results) = py.detach(|| guarded(|| preprocess_batch(&images, &spec, &limits)))?;
    let (n, h, w) = (images.len(), height as usize, width as usize);
    let shape = match layout {
        Layout::Hwc => [n, h, w, channels],
        Layout::Chw => [n, channels, h, w],
    };
    let array = match data {
        TensorData::U8(v) => into_numpy(py, shape, v)?,
        TensorData::F32(v) => into_numpy(py, shape, v)?,
    };
    let items = results
        .into_iter()
        .map(|result| match result {
            Ok(placed) => {
                let t = placed.transform;
                let header = placed.header;
                (
                    header.format.name(),
                    header.width,
                    header.height,
                    placed.orientation.exif(),
                    t.scale_x,
                    t.scale_y,
                    t.pad_x,
                    t.pad_y,
                )
                    .into_pyobject(py)
                    .map(|tuple| tuple.into_any().unbind())
            }
            Err(err) => Ok(PyErr::from(err).into_value(py).into_any()),
        })
        .collect::<PyResult<_>>()?;
    Ok((array, items))
}

#[cold]
fn invalid(what: &str, value: &str) -> PyErr {
    PyValueError::new_err(format!("unknown {what} {value:?}"))
}

/// Reads the format and size from the header only: `(format, width, height)`.
#[pyfunction(name = "probe")]
#[pyo3(signature = (data, *, max_bytes, max_width, max_height, max_pixels))]
fn probe_header(
    data: &[u8],
    max_bytes: u64,
    max_width: u32,
    max_height: u32,
    max_pixels: u64,
) -> PyResult<(&'static str, u32, u32)> {
    let limits = Limits {
        max_bytes,
        max_width,
        max_height,
        max_pixels,
    };
    let header = guarded(|| probe(data, &limits))?;
    Ok((header.format.name(), header.width, header.height))
}

/// Decodes one image at full size, upright: `(array, (format, stored_width,
/// stored_height, orientation))`, the array `(height, width, 3)` RGB uint8
/// with alpha flattened onto `background`. The GIL is released while decoding.
#[pyfunction(name = "decode")]
#[pyo3(signature = (data, *, background, max_bytes, max_width, max_height, max_pixels))]
fn decode_full<'py>(
    py: Python<'py>,
    data: &[u8],
    background: [u8; 3],
    max_bytes: u64,
    max_width: u32,
    max_height: u32,
    max_pixels: u64,
) -> PyResult<DecodedImage<'py>> {
    let limits = Limits {
        max_bytes,
        max_width,
        max_height,
        max_pixels,
    };
    let upright = py.detach(|| guarded(|| decode_upright(data, &limits, background)))?;
    let (header, image) = (upright.header, upright.image);
    let shape = [image.height as usize, image.width as usize, 3];
    let array = Array3::from_shape_vec(shape, image.pixels).map_err(Error::internal)?;
    let info = (
        header.format.name(),
        header.width,
        header.height,
        upright.orientation.exif(),
    );
    Ok((array.into_pyarray(py).into_any(), info))
}

/// What [`decode_full`] returns to Python.
type DecodedImage<'py> = (Bound<'py, PyAny>, (&'static str, u32, u32, u8));

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
    use super::{decode_full, preprocess, probe_header};
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
