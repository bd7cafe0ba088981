//! The one error type of the core. Each variant maps to one Python exception class.

/// Everything the core can reject. No variant is ever produced for valid input.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// An array has the wrong length or a table has rows that disagree.
    #[error("{what}: expected length {expected}, got {got}")]
    Length {
        what: &'static str,
        expected: usize,
        got: usize,
    },
    /// An item id is outside `0..n_items`.
    #[error("{what}[{index}] = {id} is not a known item (n_items = {n_items})")]
    UnknownItem {
        what: &'static str,
        index: usize,
        id: u32,
        n_items: usize,
    },
    /// A scalar argument is out of its domain (negative size, NaN time, ...).
    #[error("{what}: {reason}")]
    InvalidValue { what: &'static str, reason: String },
    /// An ANN index file cannot be read, or a search of it failed.
    #[error("{path}: {reason}")]
    Index { path: String, reason: String },
    /// An item rows file cannot be written, mapped, or is not the packed
    /// table the caller expects (its header, stride, alignment, length, a NaN).
    #[error("{path}: {reason}")]
    ItemRows { path: String, reason: String },
    /// An IVF index file (`ivf_*.npy`) cannot be mapped, or is not the table
    /// the caller expects (its header, dtype, shape, length, or its values).
    #[error("{path}: {reason}")]
    IvfFile { path: String, reason: String },
}

pub type Result<T> = std::result::Result<T, Error>;

/// `Err(Length)` unless `got == expected`.
pub(crate) fn check_len(what: &'static str, expected: usize, got: usize) -> Result<()> {
    if got == expected {
        Ok(())
    } else {
        Err(Error::Length {
            what,
            expected,
            got,
        })
    }
}

/// `Err(UnknownItem)` for the first id in `ids` that is `>= n_items`.
pub(crate) fn check_ids(what: &'static str, ids: &[u32], n_items: usize) -> Result<()> {
    // A max without early exit vectorizes; the search runs only on failure.
    let max = ids.iter().fold(0u32, |m, &id| m.max(id));
    if ids.is_empty() || (max as usize) < n_items {
        return Ok(());
    }
    match ids.iter().position(|&id| id as usize >= n_items) {
        None => Ok(()),
        Some(index) => Err(Error::UnknownItem {
            what,
            index,
            id: ids[index],
            n_items,
        }),
    }
}

/// Converts a signed count from the caller into a `usize`, rejecting negatives.
pub(crate) fn non_negative(what: &'static str, value: i64) -> Result<usize> {
    usize::try_from(value).map_err(|_| Error::InvalidValue {
        what,
        reason: format!("must be >= 0, got {value}"),
    })
}
