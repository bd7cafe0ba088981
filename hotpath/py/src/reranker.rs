//! `Reranker`: genre-capped ordering with seeded epsilon exploration.

use edgerank_core as core;
use numpy::{IntoPyArray, PyArray1};
use pyo3::prelude::*;

use crate::arrays::{vec1, View};
use crate::detach::run_detached;

#[pyclass(module = "hotpath._native", frozen)]
pub struct Reranker {
    inner: core::Reranker,
}

type RerankOutput<'py> = (Bound<'py, PyArray1<u32>>, Bound<'py, PyArray1<bool>>);

#[pymethods]
impl Reranker {
    #[new]
    fn new(py: Python<'_>, item_primary_genre: &Bound<'_, PyAny>) -> PyResult<Self> {
        // A bundle's table, memory-mapped: copied with the GIL released, since a page the copy faults in
        // from disk would otherwise hold every request thread (the loading thread runs at low priority).
        let view = View::<u16>::new(item_primary_genre, "item_primary_genre", 1)?;
        let genres = view.as_slice()?;
        let inner = run_detached(py, move || Ok(core::Reranker::new(genres.to_vec())))?;
        Ok(Self { inner })
    }

    #[getter]
    fn n_items(&self) -> usize {
        self.inner.n_items()
    }

    #[allow(clippy::too_many_arguments)]
    fn rerank<'py>(
        &self,
        py: Python<'py>,
        candidates: &Bound<'py, PyAny>,
        scores: &Bound<'py, PyAny>,
        n_results: i64,
        max_per_genre: i64,
        epsilon: f64,
        seed: u64,
    ) -> PyResult<RerankOutput<'py>> {
        let candidates = vec1::<u32>(candidates, "candidates")?;
        let scores = vec1::<f32>(scores, "scores")?;
        let inner = &self.inner;
        let out = run_detached(py, || {
            inner.rerank(
                &candidates,
                &scores,
                n_results,
                max_per_genre,
                epsilon,
                seed,
            )
        })?;
        Ok((
            out.positions.into_pyarray(py),
            out.explored.into_pyarray(py),
        ))
    }

    fn __repr__(&self) -> String {
        format!("Reranker(n_items={})", self.n_items())
    }
}
