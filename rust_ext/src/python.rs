//! The PyO3 layer, `adapter._native`: converts arguments, releases the GIL,
//! hands buffers to NumPy without a copy and maps [`Error`] to exceptions.
//!
//! The exception classes belong to `adapter.imaging` (Python owns the
//! hierarchy); they are imported on first use.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

use ndarray::Array3;
use numpy::IntoPyArray;
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;

use crate::{preprocess, probe, DType, Error, Limits, ResizeMode, Target, TensorData};

/// `decode_resize`'s result: array, original width and height, then
/// `scale_x, scale_y, pad_x, pad_y`.
type DecodeResult<'py> = (Bound<'py, PyAny>, u32, u32, f64, f64, f64, f64);

static UNSUPPORTED_IMAGE: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static CORRUPT_IMAGE: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static IMAGE_TOO_LARGE: PyOnceLock<Py<PyType>> = PyOnceLock::new();

impl From<Error> for PyErr {
    #[cold]
    fn from(err: Error) -> Self {
        let (cell, name) = match &err {
            Error::Empty | Error::UnsupportedFormat | Error::UnsupportedFeature { .. } => {
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

/// Decodes a JPEG or PNG and resizes it to `width` x `height` RGB.
///
/// Returns `(array, orig_width, orig_height, scale_x, scale_y, pad_x, pad_y)`;
/// the array has shape `(height, width, 3)` and owns the Rust buffer.
/// The GIL is released while decoding and resizing.
#[pyfunction]
#[pyo3(signature = (
    data, width, height, *, resize, dtype, pad_value, max_bytes, max_width, max_height, max_pixels
))]
#[allow(
    clippy::too_many_arguments,
    reason = "mirrors the keyword-only Python signature"
)]
fn decode_resize<'py>(
    py: Python<'py>,
    data: &[u8],
    width: u32,
    height: u32,
    resize: &str,
    dtype: &str,
    pad_value: u8,
    max_bytes: u64,
    max_width: u32,
    max_height: u32,
    max_pixels: u64,
) -> PyResult<DecodeResult<'py>> {
    let mode = match resize {
        "stretch" => ResizeMode::Stretch,
        "letterbox" => ResizeMode::Letterbox { pad_value },
        other => {
            return Err(PyValueError::new_err(format!(
                "unknown resize mode {other:?}"
            )))
        }
    };
    let dtype = match dtype {
        "uint8" => DType::U8,
        "float32" => DType::F32,
        other => return Err(PyValueError::new_err(format!("unknown dtype {other:?}"))),
    };
    let target = Target {
        width,
        height,
        mode,
    };
    let limits = Limits {
        max_bytes,
        max_width,
        max_height,
        max_pixels,
    };
    let out = py.detach(|| guarded(|| preprocess(data, &target, dtype, &limits)))?;
    let shape = out.tensor.shape();
    let array = match out.tensor.data {
        TensorData::U8(v) => into_numpy(py, shape, v)?,
        TensorData::F32(v) => into_numpy(py, shape, v)?,
    };
    let t = out.transform;
    Ok((
        array,
        out.header.width,
        out.header.height,
        t.scale_x,
        t.scale_y,
        t.pad_x,
        t.pad_y,
    ))
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

/// Moves `data` into a NumPy array of `shape` without copying it.
fn into_numpy<T: numpy::Element>(
    py: Python<'_>,
    shape: (usize, usize, usize),
    data: Vec<T>,
) -> PyResult<Bound<'_, PyAny>> {
    let array = Array3::from_shape_vec(shape, data).map_err(Error::internal)?;
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
    use super::{decode_resize, probe_header};
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
