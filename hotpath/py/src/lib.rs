//! `hotpath._native`: argument conversion, error mapping and GIL release over
//! `edgerank-core`. Import it through the `hotpath` package, not directly.

mod ann;
mod arrays;
mod assembler;
mod blender;
mod detach;
mod errors;
mod ivf;
mod reranker;
mod residency;

use pyo3::prelude::*;

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<ann::AnnIndex>()?;
    m.add_class::<assembler::Assembler>()?;
    m.add_function(wrap_pyfunction!(assembler::write_item_rows, m)?)?;
    m.add_function(wrap_pyfunction!(assembler::item_row_layout, m)?)?;
    m.add_class::<blender::Blender>()?;
    m.add_function(wrap_pyfunction!(detach::bulk_niceness, m)?)?;
    m.add_class::<ivf::IvfIndex>()?;
    m.add_class::<reranker::Reranker>()?;
    m.add_function(wrap_pyfunction!(residency::file_mappings, m)?)?;
    m.add_function(wrap_pyfunction!(residency::lock_code_mappings, m)?)?;
    m.add_function(wrap_pyfunction!(residency::prefault_mappings, m)?)?;
    m.add_function(wrap_pyfunction!(residency::release_mappings, m)?)?;
    m.add(
        "RESIDENCY_PIECE_BYTES",
        edgerank_core::residency::PIECE_BYTES,
    )?;
    let exc = errors::exceptions(py)?;
    m.add("HotpathError", exc.hotpath.bind(py))?;
    m.add("ShapeError", exc.shape.bind(py))?;
    m.add("UnknownItemError", exc.unknown_item.bind(py))?;
    m.add("LayoutError", exc.layout.bind(py))?;
    m.add("AnnIndexError", exc.ann_index.bind(py))?;
    m.add("ItemRowsError", exc.item_rows.bind(py))?;
    m.add("IvfIndexError", exc.ivf_index.bind(py))?;
    Ok(())
}
