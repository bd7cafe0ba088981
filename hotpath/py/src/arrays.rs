//! NumPy in: check type, dtype, dimensions and layout, then copy into an owned
//! `Vec` while the GIL is held. Nothing is ever copied silently to fix layout.

use numpy::{
    Element, PyArrayDescrMethods, PyArrayDyn, PyArrayMethods, PyUntypedArray, PyUntypedArrayMethods,
};
use pyo3::prelude::*;

use crate::errors::{layout_error, shape_error};

/// A 1-D array of `T`, copied.
pub fn vec1<T: Element + Copy>(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<Vec<T>> {
    owned(obj, name, 1).map(|(data, _)| data)
}

/// A 2-D C-contiguous array of `T`, copied, with its `(rows, cols)`.
pub fn vec2<T: Element + Copy>(
    obj: &Bound<'_, PyAny>,
    name: &str,
) -> PyResult<(Vec<T>, usize, usize)> {
    owned(obj, name, 2).map(|(data, shape)| (data, shape[0], shape[1]))
}

fn owned<T: Element + Copy>(
    obj: &Bound<'_, PyAny>,
    name: &str,
    ndim: usize,
) -> PyResult<(Vec<T>, Vec<usize>)> {
    let py = obj.py();
    let Ok(array) = obj.cast::<PyUntypedArray>() else {
        let got = obj.get_type().name()?;
        return Err(layout_error(
            py,
            format!("{name}: expected a numpy.ndarray, got {got}"),
        ));
    };
    if array.ndim() != ndim {
        let shape = array.shape();
        return Err(shape_error(
            py,
            format!("{name}: expected a {ndim}-D array, got shape {shape:?}"),
        ));
    }
    let want = T::get_dtype(py);
    if !array.dtype().is_equiv_to(&want) {
        let got = array.dtype();
        return Err(layout_error(
            py,
            format!("{name}: expected dtype {want}, got {got}"),
        ));
    }
    if !array.is_c_contiguous() {
        return Err(layout_error(
            py,
            format!("{name}: array is not C-contiguous (use numpy.ascontiguousarray)"),
        ));
    }
    let typed = array.cast::<PyArrayDyn<T>>()?;
    let readonly = typed
        .try_readonly()
        .map_err(|err| layout_error(py, format!("{name}: {err}")))?;
    let slice = readonly
        .as_slice()
        .map_err(|err| layout_error(py, format!("{name}: {err} (misaligned?)")))?;
    Ok((slice.to_vec(), array.shape().to_vec()))
}
