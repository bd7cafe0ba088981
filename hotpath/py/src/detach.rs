//! Every call into the core goes through here: the inputs are already owned,
//! the GIL is released for the work, and errors and panics become exceptions.
//! A thread that set a `bulk_niceness` has its calls' work run on a thread of
//! their own at that much lower a priority (`edgerank_core::priority`).

use std::any::Any;
use std::cell::Cell;
use std::mem::ManuallyDrop;
use std::panic::{catch_unwind, AssertUnwindSafe};

use edgerank_core::priority::{run_niced, MAX_NICENESS};
use pyo3::prelude::*;

use crate::errors::{core_error, internal_error, shape_error};

thread_local! {
    /// How much lower than the calling thread its calls' work runs (0: on the calling thread).
    static BULK_NICENESS: Cell<i32> = const { Cell::new(0) };
}

/// Sets how much lower than the calling thread the work of its later calls into the hot path runs:
/// on a thread of its own with that much more niceness, which never takes the GIL (0, the default:
/// on the calling thread). Returns the value it replaces. For a load's bulk steps beside serving
/// threads: lowering the calling thread itself would have it take the GIL back at low priority.
#[pyfunction]
pub fn bulk_niceness(py: Python<'_>, niceness: i32) -> PyResult<i32> {
    if !(0..=MAX_NICENESS).contains(&niceness) {
        return Err(shape_error(
            py,
            format!("niceness: must be in [0, {MAX_NICENESS}], got {niceness}"),
        ));
    }
    Ok(BULK_NICENESS.replace(niceness))
}

/// `work()` with the GIL released, at the calling thread's `bulk_niceness`.
pub fn detached<T, F>(py: Python<'_>, work: F) -> T
where
    F: FnOnce() -> T + Send,
    T: Send,
{
    let niceness = BULK_NICENESS.get();
    py.detach(move || run_niced(niceness, work))
}

pub fn run_detached<T, F>(py: Python<'_>, work: F) -> PyResult<T>
where
    F: FnOnce() -> edgerank_core::Result<T> + Send,
    T: Send,
{
    match detached(py, move || catch_unwind(AssertUnwindSafe(work))) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(err)) => Err(core_error(py, err)),
        Err(payload) => Err(internal_error(py, panic_message(payload.as_ref()))),
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic payload".to_owned()
    }
}

/// Drops what a pyclass's `Drop` takes out of its `ManuallyDrop` field on a
/// short-lived thread of its own: unmapping or freeing a 1M-item table takes
/// milliseconds that Python's deallocation would spend with the GIL held.
pub fn drop_off_thread<T: Send + 'static>(field: &mut ManuallyDrop<T>, name: &str) {
    // SAFETY: called from the owner's `drop`, after which the field is never used again.
    let value = unsafe { ManuallyDrop::take(field) };
    let spawned = std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || drop(value));
    // Without a thread (resource exhaustion), `spawn`'s error path dropped the value here.
    drop(spawned);
}
