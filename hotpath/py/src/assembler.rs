//! `Assembler`: holds the item feature table (packed from arrays, or a mapped
//! item rows file); one `assemble` call per request. `write_item_rows` writes
//! that file.

use std::path::PathBuf;

use std::mem::ManuallyDrop;

use edgerank_core as core;
use numpy::ndarray::Array2;
use numpy::{IntoPyArray, PyArray2};
use pyo3::prelude::*;

use crate::arrays::{vec1, View};
use crate::detach::{drop_off_thread, run_detached};
use crate::errors::core_error;

#[pyclass(module = "hotpath._native", frozen)]
pub struct Assembler {
    /// Dropped on a thread of its own (see `Drop`).
    inner: ManuallyDrop<core::Assembler>,
}

impl Drop for Assembler {
    /// Unmapping a 1M-item table (384 MB, locked by the node) takes about
    /// 12 ms that Python's deallocation would spend with the GIL held.
    fn drop(&mut self) {
        drop_off_thread(&mut self.inner, "hotpath-assembler-drop");
    }
}

/// The core's borrowed matrix over a checked 2-D view.
fn matrix<'a>(
    py: Python<'_>,
    name: &'static str,
    view: &'a View<'_, f32>,
) -> PyResult<core::Matrix<'a, f32>> {
    let (rows, cols) = (view.shape()[0], view.shape()[1]);
    core::Matrix::new(name, view.as_slice()?, rows, cols).map_err(|err| core_error(py, err))
}

#[pymethods]
impl Assembler {
    /// Copies the tables into the core's packed layout (with the GIL released: see `with_table`).
    #[new]
    fn new(
        py: Python<'_>,
        item_dense: &Bound<'_, PyAny>,
        item_emb: &Bound<'_, PyAny>,
        item_genre: &Bound<'_, PyAny>,
        item_first_ts: &Bound<'_, PyAny>,
    ) -> PyResult<Self> {
        let inner = with_table(
            py,
            [item_dense, item_emb, item_genre, item_first_ts],
            core::Assembler::new,
        )?;
        Ok(Self {
            inner: ManuallyDrop::new(inner),
        })
    }

    /// Maps an item rows file read-only (no copy) and checks it, with the GIL released; with
    /// `check_times` false, its `first_ts` values are not scanned for NaN.
    #[staticmethod]
    #[pyo3(signature = (path, emb_dim, n_genres, item_dim, *, check_times = true))]
    fn open(
        py: Python<'_>,
        path: PathBuf,
        emb_dim: usize,
        n_genres: usize,
        item_dim: usize,
        check_times: bool,
    ) -> PyResult<Self> {
        let layout = core::RowLayout {
            emb_dim,
            genre_dim: n_genres,
            dense_dim: item_dim,
        };
        let inner = run_detached(py, || {
            core::Assembler::open_checked(&path, layout, check_times)
        })?;
        Ok(Self {
            inner: ManuallyDrop::new(inner),
        })
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

/// Writes the packed rows of the item arrays to `path` (an `.npy` file that
/// `Assembler.open` maps), with the GIL released.
#[pyfunction]
pub fn write_item_rows(
    py: Python<'_>,
    path: PathBuf,
    item_dense: &Bound<'_, PyAny>,
    item_emb: &Bound<'_, PyAny>,
    item_genre: &Bound<'_, PyAny>,
    item_first_ts: &Bound<'_, PyAny>,
) -> PyResult<()> {
    with_table(
        py,
        [item_dense, item_emb, item_genre, item_first_ts],
        |items| core::write_item_rows(&path, items),
    )
}

/// The packed row of items with these dimensions, as the core lays it out:
/// `(stride, [(column, start, stop), ...])` in floats, for `emb`, `genre`,
/// `dense` and `first_ts` (the two halves of its f64 bits).
#[pyfunction]
pub fn item_row_layout(
    emb_dim: usize,
    n_genres: usize,
    item_dim: usize,
) -> (usize, Vec<(&'static str, usize, usize)>) {
    let layout = core::RowLayout {
        emb_dim,
        genre_dim: n_genres,
        dense_dim: item_dim,
    };
    let columns = layout.columns();
    let columns = columns.into_iter().map(|(name, r)| (name, r.start, r.end));
    (layout.stride(), columns.collect())
}

/// Checks and borrows the item arrays read-only with the GIL held, then runs
/// `work` over them with the GIL released (a 1M-item table takes a while).
/// The borrows live until `work` is done, so no other Rust code may write to
/// the arrays meanwhile; like any call that releases the GIL over NumPy data,
/// Python code must not write to them until the call returns.
fn with_table<T: Send>(
    py: Python<'_>,
    [item_dense, item_emb, item_genre, item_first_ts]: [&Bound<'_, PyAny>; 4],
    work: impl FnOnce(&core::ItemTable<'_>) -> core::Result<T> + Send,
) -> PyResult<T> {
    let dense = View::new(item_dense, "item_dense", 2)?;
    let emb = View::new(item_emb, "item_emb", 2)?;
    let genre = View::new(item_genre, "item_genre", 2)?;
    let first_ts = View::<f64>::new(item_first_ts, "item_first_ts", 1)?;
    let items = core::ItemTable {
        dense: matrix(py, "item_dense", &dense)?,
        emb: matrix(py, "item_emb", &emb)?,
        genre: matrix(py, "item_genre", &genre)?,
        first_ts: first_ts.as_slice()?,
    };
    let out = run_detached(py, || work(&items));
    // The views (and their borrows) are dropped only here, after the work.
    drop((dense, emb, genre, first_ts));
    out
}
