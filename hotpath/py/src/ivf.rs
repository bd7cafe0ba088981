//! `IvfIndex`: the trainer's inverted lists and codes, mapped from a bundle's
//! `ivf_*.npy` files (`open`) or copied from arrays (the constructor), with
//! the GIL released; each search re-scores its best hits with the item
//! embeddings the index was built with: the first `ndim` columns of a 2-D f32
//! array (the embeddings, or the bundle's mapped packed item rows), held here
//! and borrowed read-only per search, never copied.

use std::mem::ManuallyDrop;
use std::path::PathBuf;

use edgerank_core as core;
use numpy::{IntoPyArray, PyArray2, PyArrayMethods};
use pyo3::prelude::*;

use crate::arrays::{count, vec1, SearchOutput, View};
use crate::detach::{drop_off_thread, run_detached};
use crate::errors::{layout_error, shape_error};

#[pyclass(module = "hotpath._native", frozen)]
pub struct IvfIndex {
    /// Dropped on a thread of its own (see `Drop`).
    inner: ManuallyDrop<core::IvfIndex>,
    vectors: Py<PyArray2<f32>>,
    /// The row length of `vectors` (at least `ndim`).
    stride: usize,
}

impl Drop for IvfIndex {
    /// Unmapping the codes of a 1M-item catalog (64 MB, locked by the node), or
    /// freeing a copy of them, takes a few ms that Python's deallocation would
    /// spend with the GIL held.
    fn drop(&mut self) {
        drop_off_thread(&mut self.inner, "hotpath-ivf-drop");
    }
}

#[pymethods]
impl IvfIndex {
    /// The arrays are checked and borrowed read-only with the GIL held, then
    /// checked (every item once) and copied with the GIL released.
    #[new]
    fn new(
        py: Python<'_>,
        centroids: &Bound<'_, PyAny>,
        offsets: &Bound<'_, PyAny>,
        items: &Bound<'_, PyAny>,
        codes: &Bound<'_, PyAny>,
        scale: &Bound<'_, PyAny>,
        vectors: &Bound<'_, PyAny>,
    ) -> PyResult<Self> {
        let centroids = View::<f32>::new(centroids, "centroids", 2)?;
        let offsets = View::<u32>::new(offsets, "offsets", 1)?;
        let items = View::<u32>::new(items, "items", 1)?;
        let codes = View::<i8>::new(codes, "codes", 2)?;
        let scale = View::<f32>::new(scale, "scale", 1)?;
        // Checked like the others; kept, not copied.
        let checked = View::<f32>::new(vectors, "vectors", 2)?;
        let ndim = centroids.shape()[1];
        let n = items.shape()[0];
        let stride = checked.shape()[1];
        if codes.shape() != [n, ndim] {
            return Err(shape_error(
                py,
                format!(
                    "codes: expected shape [{n}, {ndim}] (items, centroids' columns), got {:?}",
                    codes.shape()
                ),
            ));
        }
        if checked.shape()[0] != n || stride < ndim {
            return Err(shape_error(
                py,
                format!(
                    "vectors: expected {n} rows (the items) of at least {ndim} values, got shape {:?}",
                    checked.shape()
                ),
            ));
        }
        let tables = core::IvfTables {
            centroids: centroids.as_slice()?,
            offsets: offsets.as_slice()?,
            items: items.as_slice()?,
            codes: codes.as_slice()?,
            scale: scale.as_slice()?,
        };
        let inner = run_detached(py, || core::IvfIndex::new(&tables, ndim))?;
        // The views (and their borrows) are dropped only here, after the copy.
        drop((centroids, offsets, items, codes, scale, checked));
        Self::holding(py, inner, vectors, stride)
    }

    /// Maps the five `ivf_*.npy` files of `directory` read-only (no copy) and
    /// checks them, with the GIL released, for the rows of `vectors` (checked
    /// here, kept, not copied) and `ndim` dimensions.
    #[staticmethod]
    fn open(
        py: Python<'_>,
        directory: PathBuf,
        vectors: &Bound<'_, PyAny>,
        ndim: usize,
    ) -> PyResult<Self> {
        let checked = View::<f32>::new(vectors, "vectors", 2)?;
        let (n, stride) = (checked.shape()[0], checked.shape()[1]);
        drop(checked);
        if stride < ndim {
            return Err(shape_error(
                py,
                format!("vectors: rows of {stride} values cannot hold {ndim} dimensions"),
            ));
        }
        let inner = run_detached(py, || core::IvfIndex::open(&directory, n, ndim))?;
        Self::holding(py, inner, vectors, stride)
    }

    /// The best `min(k, len)` items by exact dot product, best first.
    #[pyo3(signature = (vector, k, *, nprobe, rescore))]
    fn search<'py>(
        &self,
        py: Python<'py>,
        vector: &Bound<'py, PyAny>,
        k: i64,
        nprobe: i64,
        rescore: i64,
    ) -> PyResult<SearchOutput<'py>> {
        let vector = vec1::<f32>(vector, "vector")?;
        let k = count(py, "k", k)?;
        let nprobe = count(py, "nprobe", nprobe)?;
        let rescore = count(py, "rescore", rescore)?;
        let vectors = self
            .vectors
            .bind(py)
            .try_readonly()
            .map_err(|err| layout_error(py, format!("vectors: {err}")))?;
        let rows = vectors
            .as_slice()
            .map_err(|err| layout_error(py, format!("vectors: {err}")))?;
        let (inner, stride) = (&self.inner, self.stride);
        let hits = run_detached(py, || {
            inner.search(&vector, rows, stride, k, nprobe, rescore)
        })?;
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
    fn nlist(&self) -> usize {
        self.inner.nlist()
    }

    fn __repr__(&self) -> String {
        format!(
            "IvfIndex(len={}, ndim={}, nlist={})",
            self.inner.len(),
            self.inner.ndim(),
            self.inner.nlist()
        )
    }
}

impl IvfIndex {
    /// The index over `inner`, holding `vectors` (already checked) for its re-scores.
    fn holding(
        py: Python<'_>,
        inner: core::IvfIndex,
        vectors: &Bound<'_, PyAny>,
        stride: usize,
    ) -> PyResult<Self> {
        let vectors = vectors
            .cast::<PyArray2<f32>>()
            .map_err(|err| layout_error(py, format!("vectors: {err}")))?
            .clone()
            .unbind();
        Ok(Self {
            inner: ManuallyDrop::new(inner),
            vectors,
            stride,
        })
    }
}
