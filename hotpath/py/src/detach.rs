//! Every call into the core goes through here: the inputs are already owned,
//! the GIL is released for the work, and errors and panics become exceptions.

use std::any::Any;
use std::mem::ManuallyDrop;
use std::panic::{catch_unwind, AssertUnwindSafe};

use pyo3::prelude::*;

use crate::errors::{core_error, internal_error};

pub fn run_detached<T, F>(py: Python<'_>, work: F) -> PyResult<T>
where
    F: FnOnce() -> edgerank_core::Result<T> + Send,
    T: Send,
{
    match py.detach(move || catch_unwind(AssertUnwindSafe(work))) {
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
