//! `AnnIndex`: a usearch index file mapped and searched by the core, with the
//! GIL released for both (the Python wheel's `Index.view` holds it for the
//! whole call: 35-140 ms at 1M items, during which no request thread runs).

use std::mem::ManuallyDrop;
use std::path::PathBuf;

use edgerank_core as core;
use numpy::IntoPyArray;
use pyo3::prelude::*;

use crate::arrays::{count, vec1, SearchOutput};
use crate::detach::{drop_off_thread, run_detached};

#[pyclass(module = "hotpath._native", frozen)]
pub struct AnnIndex {
    /// Dropped on a thread of its own (see `Drop`).
    inner: ManuallyDrop<core::AnnIndex>,
}

impl Drop for AnnIndex {
    /// Unmapping a 1M-item index and freeing its tables takes about 10 ms,
    /// which Python's deallocation would spend with the GIL held (as the
    /// wheel's `Index` does).
    fn drop(&mut self) {
        drop_off_thread(&mut self.inner, "hotpath-ann-drop");
    }
}

#[pymethods]
impl AnnIndex {
    /// `threads`: searches that may run at once before the next one waits for
    /// a slot (a slot costs a search context, allocated on first use).
    #[staticmethod]
    #[pyo3(signature = (path, *, threads = 32))]
    fn open(py: Python<'_>, path: PathBuf, threads: i64) -> PyResult<Self> {
        let threads = count(py, "threads", threads)?;
        let inner = run_detached(py, move || core::AnnIndex::view(&path, threads))?;
        Ok(Self {
            inner: ManuallyDrop::new(inner),
        })
    }

    fn search<'py>(
        &self,
        py: Python<'py>,
        vector: &Bound<'py, PyAny>,
        k: i64,
    ) -> PyResult<SearchOutput<'py>> {
        let vector = vec1::<f32>(vector, "vector")?;
        let k = count(py, "k", k)?;
        let inner = &self.inner;
        let hits = run_detached(py, || inner.search(&vector, k))?;
        Ok((hits.items.into_pyarray(py), hits.scores.into_pyarray(py)))
    }

    fn __len__(&self) -> usize {
        self.inner.len()
    }

    #[getter]
    fn ndim(&self) -> usize {
        self.inner.ndim()
    }

    #[getter]
    fn metric(&self) -> &'static str {
        self.inner.metric()
    }

    #[getter]
    fn dtype(&self) -> &'static str {
        self.inner.scalar()
    }

    #[getter]
    fn connectivity(&self) -> usize {
        self.inner.connectivity()
    }

    #[getter]
    fn threads(&self) -> usize {
        self.inner.threads()
    }

    #[getter]
    fn path(&self) -> &str {
        self.inner.path()
    }

    #[getter]
    fn get_expansion_search(&self) -> usize {
        self.inner.expansion_search()
    }

    #[setter]
    fn set_expansion_search(&self, py: Python<'_>, value: i64) -> PyResult<()> {
        let value = count(py, "expansion_search", value)?;
        let inner = &self.inner;
        // Waits for running searches: without the GIL, so that they can finish.
        run_detached(py, || inner.set_expansion_search(value))
    }

    fn __repr__(&self) -> String {
        format!(
            "AnnIndex(path={:?}, len={}, ndim={}, metric={:?}, dtype={:?}, expansion_search={})",
            self.inner.path(),
            self.inner.len(),
            self.inner.ndim(),
            self.inner.metric(),
            self.inner.scalar(),
            self.inner.expansion_search(),
        )
    }
}
