//! The Python exception classes, defined here and nowhere else, and the one
//! mapping from core errors (and panics) to them.

use edgerank_core::Error;
use pyo3::exceptions::{PyException, PyIndexError, PyOSError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple, PyType};

const MODULE: &str = "hotpath._native";

pub struct Exceptions {
    pub hotpath: Py<PyType>,
    pub shape: Py<PyType>,
    pub unknown_item: Py<PyType>,
    pub layout: Py<PyType>,
    pub ann_index: Py<PyType>,
    pub item_rows: Py<PyType>,
    pub ivf_index: Py<PyType>,
}

static EXCEPTIONS: PyOnceLock<Exceptions> = PyOnceLock::new();

/// The classes, created on first use. Each subclasses `HotpathError` and the
/// standard exception a caller would otherwise expect.
pub fn exceptions(py: Python<'_>) -> PyResult<&'static Exceptions> {
    EXCEPTIONS.get_or_try_init(py, || {
        let base = new_class(
            py,
            "HotpathError",
            "Base class of every error raised by the hot path.",
            &[py.get_type::<PyException>()],
        )?;
        let sub = |name, doc, std: Bound<'_, PyType>| {
            new_class(py, name, doc, &[base.bind(py).clone(), std])
        };
        Ok(Exceptions {
            shape: sub(
                "ShapeError",
                "An array has the wrong length or shape, or a value is out of its domain.",
                py.get_type::<PyValueError>(),
            )?,
            unknown_item: sub(
                "UnknownItemError",
                "An item id is not below n_items.",
                py.get_type::<PyIndexError>(),
            )?,
            layout: sub(
                "LayoutError",
                "An argument is not a C-contiguous, aligned ndarray of the expected dtype.",
                py.get_type::<PyTypeError>(),
            )?,
            ann_index: sub(
                "AnnIndexError",
                "An ANN index file cannot be read (the message names it and says why), or a search of it failed.",
                py.get_type::<PyOSError>(),
            )?,
            item_rows: sub(
                "ItemRowsError",
                "An item rows file cannot be written or mapped, or is not the packed table expected (the message says why).",
                py.get_type::<PyOSError>(),
            )?,
            ivf_index: sub(
                "IvfIndexError",
                "An IVF index file cannot be mapped, or is not the table expected (the message names it and says why).",
                py.get_type::<PyOSError>(),
            )?,
            hotpath: base,
        })
    })
}

/// `type(name, bases, {"__module__": ..., "__doc__": doc})`: the only way to
/// get multiple bases, which `create_exception!` does not offer.
fn new_class(
    py: Python<'_>,
    name: &str,
    doc: &str,
    bases: &[Bound<'_, PyType>],
) -> PyResult<Py<PyType>> {
    let namespace = PyDict::new(py);
    namespace.set_item("__module__", MODULE)?;
    namespace.set_item("__doc__", doc)?;
    let bases = PyTuple::new(py, bases)?;
    let class = py.get_type::<PyType>().call1((name, bases, namespace))?;
    Ok(class.cast_into::<PyType>()?.unbind())
}

fn raise(py: Python<'_>, pick: fn(&Exceptions) -> &Py<PyType>, message: String) -> PyErr {
    match exceptions(py) {
        Ok(exc) => PyErr::from_type(pick(exc).bind(py).clone(), message),
        Err(err) => err,
    }
}

pub fn shape_error(py: Python<'_>, message: String) -> PyErr {
    raise(py, |e| &e.shape, message)
}

pub fn layout_error(py: Python<'_>, message: String) -> PyErr {
    raise(py, |e| &e.layout, message)
}

/// A panic in the core: a bug, reported as the base class so servers that
/// catch `Exception` keep serving.
pub fn internal_error(py: Python<'_>, message: String) -> PyErr {
    raise(
        py,
        |e| &e.hotpath,
        format!("internal error (panic): {message}"),
    )
}

pub fn core_error(py: Python<'_>, err: Error) -> PyErr {
    let message = err.to_string();
    match err {
        Error::Length { .. } | Error::InvalidValue { .. } => shape_error(py, message),
        Error::UnknownItem { .. } => raise(py, |e| &e.unknown_item, message),
        Error::Index { .. } => raise(py, |e| &e.ann_index, message),
        Error::ItemRows { .. } => raise(py, |e| &e.item_rows, message),
        Error::IvfFile { .. } => raise(py, |e| &e.ivf_index, message),
    }
}
