//! Bulk work at a lower CPU priority, on a short-lived thread that never enters Python.
//!
//! A node loads a new bundle beside the one it serves, and the load's bulk steps (mapping an index and
//! building its key table, checking a table, faulting a bundle in) should yield the cores to the
//! request threads. Linux keeps a niceness per thread, so a thread can lower its own. But a thread of
//! the interpreter that lowered its niceness takes the GIL back when its work returns, and CPython's
//! forced switching then makes the thread that gave the GIL up wait until the low-priority one has
//! run: on busy cores that can be tens of ms, with the request thread as the one waiting (a priority
//! inversion; BENCHMARKS.md, replication, session (17)). [`run_niced`] runs the work on a thread of its
//! own instead, lowered by the niceness asked for; the calling thread keeps its priority, waits (with
//! the GIL released, in the binding), and is the only one that takes the GIL back.

use std::sync::Mutex;

/// The highest niceness Linux has.
pub const MAX_NICENESS: i32 = 19;

/// `work()` on a new thread whose niceness is the caller's plus `niceness` (at most
/// [`MAX_NICENESS`]); `work()` on the calling thread when `niceness` is 0 or less. A panic in the
/// work is resumed in the caller. Where no thread can be started, or the niceness cannot be set
/// (not Linux), the work runs at the caller's priority.
pub fn run_niced<T, F>(niceness: i32, work: F) -> T
where
    F: FnOnce() -> T + Send,
    T: Send,
{
    if niceness <= 0 {
        return work();
    }
    let slot = Mutex::new(Some(work));
    let take = || slot.lock().unwrap_or_else(|e| e.into_inner()).take();
    let spawned = std::thread::scope(|s| {
        let handle = std::thread::Builder::new()
            .name("bulk-niced".to_owned())
            .spawn_scoped(s, || {
                lower_own_priority(niceness);
                take().map(|work| work())
            });
        match handle {
            Ok(handle) => match handle.join() {
                Ok(out) => out,
                Err(payload) => std::panic::resume_unwind(payload),
            },
            Err(_) => None, // no thread (resource exhaustion): the work is still in the slot
        }
    });
    match spawned {
        Some(out) => out,
        None => take().expect("the work ran on neither thread")(),
    }
}

/// The calling thread's niceness; None where it cannot be read (not Linux).
pub fn own_niceness() -> Option<i32> {
    #[cfg(target_os = "linux")]
    {
        let tid = unsafe { libc::syscall(libc::SYS_gettid) } as libc::id_t;
        // getpriority may return -1 as a niceness: errno tells an error apart.
        unsafe { *libc::__errno_location() = 0 };
        let nice = unsafe { libc::getpriority(libc::PRIO_PROCESS, tid) };
        if nice == -1 && std::io::Error::last_os_error().raw_os_error().unwrap_or(0) != 0 {
            return None;
        }
        Some(nice)
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}

/// Adds `by` to the calling thread's niceness (Linux: per thread; elsewhere nothing, since
/// `PRIO_PROCESS` there means the whole process). True if it was set.
fn lower_own_priority(by: i32) -> bool {
    #[cfg(target_os = "linux")]
    {
        let Some(nice) = own_niceness() else {
            return false;
        };
        let tid = unsafe { libc::syscall(libc::SYS_gettid) } as libc::id_t;
        let target = nice.saturating_add(by).min(MAX_NICENESS);
        (unsafe { libc::setpriority(libc::PRIO_PROCESS, tid, target) }) == 0
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = by;
        false
    }
}

#[cfg(test)]
#[path = "priority_tests.rs"]
mod tests;
