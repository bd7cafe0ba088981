//! `Assembler`: holds the item feature table; one `assemble` call per request.

use edgerank_core as core;
use numpy::ndarray::Array2;
use numpy::{IntoPyArray, PyArray2};
use pyo3::prelude::*;

use crate::arrays::{vec1, vec2};
use crate::detach::run_detached;
use crate::errors::core_error;

#[pyclass(module = "hotpath._native", frozen)]
pub struct Assembler {
    inner: core::Assembler,
}

fn matrix(
    py: Python<'_>,
    obj: &Bound<'_, PyAny>,
    name: &'static str,
) -> PyResult<core::Matrix<f32>> {
    let (data, rows, cols) = vec2::<f32>(obj, name)?;
    core::Matrix::new(name, data, rows, cols).map_err(|err| core_error(py, err))
}

#[pymethods]
impl Assembler {
    #[new]
    fn new(
        py: Python<'_>,
        item_dense: &Bound<'_, PyAny>,
        item_emb: &Bound<'_, PyAny>,
        item_genre: &Bound<'_, PyAny>,
        item_first_ts: &Bound<'_, PyAny>,
    ) -> PyResult<Self> {
        let items = core::ItemTable {
            dense: matrix(py, item_dense, "item_dense")?,
            emb: matrix(py, item_emb, "item_emb")?,
            genre: matrix(py, item_genre, "item_genre")?,
            first_ts: vec1::<f64>(item_first_ts, "item_first_ts")?,
        };
        let inner = run_detached(py, move || core::Assembler::new(items))?;
        Ok(Self { inner })
    }

    #[getter]
    fn n_items(&self) -> usize {
        self.inner.n_items()
    }

    #[getter]
    fn item_dim(&self) -> usize {
        self.inner.item_dim()
    }

    #[getter]
    fn emb_dim(&self) -> usize {
        self.inner.emb_dim()
    }

    #[getter]
    fn n_genres(&self) -> usize {
        self.inner.n_genres()
    }

    fn n_features(&self, user_dim: usize, context_dim: usize) -> usize {
        self.inner.n_features(user_dim, context_dim)
    }

    #[allow(clippy::too_many_arguments)]
    fn assemble<'py>(
        &self,
        py: Python<'py>,
        user_dense: &Bound<'py, PyAny>,
        user_emb: &Bound<'py, PyAny>,
        user_genre: &Bound<'py, PyAny>,
        user_last_ts: f64,
        now_ts: f64,
        context: &Bound<'py, PyAny>,
        candidates: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let dense = vec1::<f32>(user_dense, "user_dense")?;
        let emb = vec1::<f32>(user_emb, "user_emb")?;
        let genre = vec1::<f32>(user_genre, "user_genre")?;
        let context = vec1::<f32>(context, "context")?;
        let candidates = vec1::<u32>(candidates, "candidates")?;
        let shape = (
            candidates.len(),
            self.inner.n_features(dense.len(), context.len()),
        );
        let inner = &self.inner;
        let rows = run_detached(py, || {
            let user = core::UserFeatures {
                dense: &dense,
                emb: &emb,
                genre: &genre,
                last_ts: user_last_ts,
                now_ts,
                context: &context,
            };
            inner.assemble(&user, &candidates)
        })?;
        let rows = Array2::from_shape_vec(shape, rows).expect("core returns n * n_features values");
        Ok(rows.into_pyarray(py))
    }

    fn __repr__(&self) -> String {
        format!(
            "Assembler(n_items={}, item_dim={}, emb_dim={}, n_genres={})",
            self.n_items(),
            self.item_dim(),
            self.emb_dim(),
            self.n_genres()
        )
    }
}
