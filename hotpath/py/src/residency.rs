//! `prefault_mappings` and `release_mappings`: a bundle's file mappings made resident, or let go,
//! a piece at a time, with the GIL released for the whole walk (at the caller's `bulk_niceness`);
//! `file_mappings` lists them.
//! `lock_code_mappings`: the process's own code locked in memory the same way.

use std::path::PathBuf;

use edgerank_core::residency;
use pyo3::prelude::*;

use crate::detach::detached;

/// (path, length, lock errno, errno) per mapping; 0 = that step did not fail.
type Outcomes = Vec<(String, usize, i32, i32)>;

fn outcomes(done: Vec<residency::Outcome>) -> Outcomes {
    done.into_iter()
        .map(|o| (o.mapping.path, o.mapping.len, o.lock_errno, o.errno))
        .collect()
}

/// Fault in (with `lock`, lock) every read-only mapping of a file under `directory`, in pieces of
/// `piece_bytes`. Raises OSError when this process's mappings cannot be read.
#[pyfunction]
#[pyo3(signature = (directory, lock, piece_bytes = residency::PIECE_BYTES))]
pub fn prefault_mappings(
    py: Python<'_>,
    directory: PathBuf,
    lock: bool,
    piece_bytes: usize,
) -> PyResult<Outcomes> {
    let done = detached(py, move || {
        residency::prefault(&directory, lock, piece_bytes)
    })?;
    Ok(outcomes(done))
}

/// Lock this process's code (every read-only mapping of a file also mapped executable: the
/// interpreter, its libraries, the extension modules) in memory, in pieces of `piece_bytes`. Raises
/// OSError when this process's mappings cannot be read.
#[pyfunction]
#[pyo3(signature = (piece_bytes = residency::PIECE_BYTES))]
pub fn lock_code_mappings(py: Python<'_>, piece_bytes: usize) -> PyResult<Outcomes> {
    let done = detached(py, move || residency::lock_code(piece_bytes))?;
    Ok(outcomes(done))
}

/// Unlock every read-only mapping of a file under `directory` and drop its page-table entries, in
/// pieces of `piece_bytes`. Raises OSError when this process's mappings cannot be read.
#[pyfunction]
#[pyo3(signature = (directory, piece_bytes = residency::PIECE_BYTES))]
pub fn release_mappings(
    py: Python<'_>,
    directory: PathBuf,
    piece_bytes: usize,
) -> PyResult<Outcomes> {
    let done = detached(py, move || residency::release(&directory, piece_bytes))?;
    Ok(outcomes(done))
}

/// (start, length, path) of this process's read-only mappings of files under `directory`. Raises
/// OSError when this process's mappings cannot be read.
#[pyfunction]
pub fn file_mappings(directory: PathBuf) -> PyResult<Vec<(usize, usize, String)>> {
    Ok(residency::this_process_mappings(&directory)?
        .into_iter()
        .map(|m| (m.start, m.len, m.path))
        .collect())
}
