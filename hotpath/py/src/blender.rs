//! `Blender`: merges ranked candidate sources into one deduplicated pool.

use edgerank_core as core;
use numpy::{IntoPyArray, PyArray1};
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use crate::arrays::{vec1, vec1_named};
use crate::detach::run_detached;
use crate::errors::layout_error;

#[pyclass(module = "hotpath._native", frozen)]
pub struct Blender {
    inner: core::Blender,
}

type BlendOutput<'py> = (
    Bound<'py, PyArray1<u32>>,
    Bound<'py, PyArray1<u8>>,
    Bound<'py, PyArray1<f32>>,
);

/// One source, owned: `(items, scores, quota)`.
type OwnedSource = (Vec<u32>, Vec<f32>, i64);

fn owned_source(index: usize, obj: &Bound<'_, PyAny>) -> PyResult<OwnedSource> {
    let py = obj.py();
    let wrong = || {
        layout_error(
            py,
            format!("sources[{index}]: expected a tuple (items, scores, quota: int)"),
        )
    };
    let tuple = obj.cast::<PyTuple>().map_err(|_| wrong())?;
    if tuple.len() != 3 {
        return Err(wrong());
    }
    let items = vec1_named::<u32>(&tuple.get_item(0)?, &|| format!("sources[{index}].items"))?;
    let scores = vec1_named::<f32>(&tuple.get_item(1)?, &|| format!("sources[{index}].scores"))?;
    let quota = tuple.get_item(2)?.extract::<i64>().map_err(|_| wrong())?;
    Ok((items, scores, quota))
}

#[pymethods]
impl Blender {
    #[new]
    fn new(n_items: usize) -> Self {
        Self {
            inner: core::Blender::new(n_items),
        }
    }

    #[getter]
    fn n_items(&self) -> usize {
        self.inner.n_items()
    }

    fn blend<'py>(
        &self,
        py: Python<'py>,
        sources: &Bound<'py, PyAny>,
        exclude: &Bound<'py, PyAny>,
        pool_size: i64,
    ) -> PyResult<BlendOutput<'py>> {
        let owned = sources
            .try_iter()
            .map_err(|_| layout_error(py, "sources: expected an iterable of tuples".into()))?
            .enumerate()
            .map(|(i, source)| owned_source(i, &source?))
            .collect::<PyResult<Vec<_>>>()?;
        let exclude = vec1::<u32>(exclude, "exclude")?;
        let inner = &self.inner;
        let out = run_detached(py, || {
            let sources: Vec<core::Source<'_>> = owned
                .iter()
                .map(|(items, scores, quota)| core::Source {
                    items,
                    scores,
                    quota: *quota,
                })
                .collect();
            inner.blend(&sources, &exclude, pool_size)
        })?;
        Ok((
            out.items.into_pyarray(py),
            out.source.into_pyarray(py),
            out.score.into_pyarray(py),
        ))
    }

    fn __repr__(&self) -> String {
        format!("Blender(n_items={})", self.n_items())
    }
}
