//! NumPy in: check type, dtype, dimensions and layout, then either copy into
//! an owned `Vec` while the GIL is held (small per-request arrays) or hand out
//! a read-only view whose borrow is held while the GIL is released (large
//! per-bundle tables, copied by the core off the GIL). Nothing is ever copied
//! silently to fix layout.

use numpy::{
    Element, PyArray1, PyArrayDescrMethods, PyArrayDyn, PyArrayMethods, PyReadonlyArrayDyn,
    PyUntypedArray, PyUntypedArrayMethods,
};
use pyo3::prelude::*;

use crate::errors::{layout_error, shape_error};

/// What a search returns: item ids and their scores, best first.
pub type SearchOutput<'py> = (Bound<'py, PyArray1<u32>>, Bound<'py, PyArray1<f32>>);

/// A count argument (k, nprobe, threads, ...) as `usize`; a negative one is a `ShapeError` naming it.
pub fn count(py: Python<'_>, what: &str, value: i64) -> PyResult<usize> {
    usize::try_from(value)
        .map_err(|_| shape_error(py, format!("{what}: must be >= 0, got {value}")))
}

/// A 1-D array of `T`, copied.
pub fn vec1<T: Element + Copy>(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<Vec<T>> {
    vec1_named(obj, &|| name.to_owned())
}

/// As `vec1`, with a name that is only formatted on error (per-call names
/// such as `sources[2].items` cost a formatting each otherwise).
pub fn vec1_named<T: Element + Copy>(
    obj: &Bound<'_, PyAny>,
    name: &dyn Fn() -> String,
) -> PyResult<Vec<T>> {
    let view = checked::<T>(obj, name, 1)?;
    Ok(slice(&view, name)?.to_vec())
}

/// A checked, read-only view of a C-contiguous array of `T` with `ndim`
/// dimensions. While it lives, rust-numpy refuses mutable borrows of the
/// array, so its slice may be read with the GIL released.
pub struct View<'py, T: Element> {
    array: PyReadonlyArrayDyn<'py, T>,
    name: &'static str,
}

impl<'py, T: Element> View<'py, T> {
    pub fn new(obj: &Bound<'py, PyAny>, name: &'static str, ndim: usize) -> PyResult<Self> {
        let array = checked::<T>(obj, &|| name.to_owned(), ndim)?;
        Ok(Self { array, name })
    }

    pub fn shape(&self) -> &[usize] {
        self.array.shape()
    }

    /// The elements, in C order: `Send`, so usable inside `run_detached`.
    pub fn as_slice(&self) -> PyResult<&[T]> {
        slice(&self.array, &|| self.name.to_owned())
    }
}

fn slice<'a, T: Element>(
    array: &'a PyReadonlyArrayDyn<'_, T>,
    name: &dyn Fn() -> String,
) -> PyResult<&'a [T]> {
    array
        .as_slice()
        .map_err(|err| layout_error(array.py(), format!("{}: {err} (misaligned?)", name())))
}

fn checked<'py, T: Element>(
    obj: &Bound<'py, PyAny>,
    name: &dyn Fn() -> String,
    ndim: usize,
) -> PyResult<PyReadonlyArrayDyn<'py, T>> {
    let py = obj.py();
    let Ok(array) = obj.cast::<PyUntypedArray>() else {
        let got = obj.get_type().name()?;
        return Err(layout_error(
            py,
            format!("{}: expected a numpy.ndarray, got {got}", name()),
        ));
    };
    if array.ndim() != ndim {
        let shape = array.shape();
        return Err(shape_error(
            py,
            format!("{}: expected a {ndim}-D array, got shape {shape:?}", name()),
        ));
    }
    let want = T::get_dtype(py);
    if !array.dtype().is_equiv_to(&want) {
        let got = array.dtype();
        return Err(layout_error(
            py,
            format!("{}: expected dtype {want}, got {got}", name()),
        ));
    }
    if !array.is_c_contiguous() {
        return Err(layout_error(
            py,
            format!(
                "{}: array is not C-contiguous (use numpy.ascontiguousarray)",
                name()
            ),
        ));
    }
    // SAFETY: `array` is an ndarray whose dtype was just checked to be `T`'s:
    // exactly what `cast::<PyArrayDyn<T>>` would check again.
    let typed = unsafe { array.cast_unchecked::<PyArrayDyn<T>>() };
    typed
        .try_readonly()
        .map_err(|err| layout_error(py, format!("{}: {err}", name())))
}
