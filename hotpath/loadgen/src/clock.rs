//! Time as Python's `time.monotonic()` reads it (CLOCK_MONOTONIC, seconds), so that both sides of the
//! pipe name the same instants; and a wait precise to a few microseconds.

use std::time::Duration;

/// Below this much time left, spin instead of sleeping: a sleep overshoots by the timer slack (set
/// to 1 µs by [`precise_sleeps`]) plus the wake-up, a few microseconds on an idle core.
const SPIN_S: f64 = 0.000_03;

/// Ask the kernel to wake this thread's sleeps on time: the default timer slack, 50 µs, would add
/// up to that much to every intended send time.
pub fn precise_sleeps() {
    // SAFETY: PR_SET_TIMERSLACK takes a value in nanoseconds and touches only the calling thread.
    unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong) };
}

/// CLOCK_MONOTONIC in seconds.
pub fn now() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec to write; CLOCK_MONOTONIC always exists on Linux.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_MONOTONIC) failed");
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// Block the calling thread until `now() >= t`.
pub fn sleep_until(t: f64) {
    loop {
        let left = t - now();
        if left <= 0.0 {
            return;
        }
        if left > SPIN_S {
            std::thread::sleep(Duration::from_secs_f64(left - SPIN_S / 2.0));
        } else {
            std::hint::spin_loop();
        }
    }
}

/// User + system CPU seconds this process has used (every thread).
pub fn cpu_s() -> f64 {
    // SAFETY: an all-zero rusage is a valid value for getrusage to overwrite.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a valid rusage to write; RUSAGE_SELF always exists.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    assert_eq!(rc, 0, "getrusage(RUSAGE_SELF) failed");
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sleep_until_is_not_early_and_barely_late() {
        let target = now() + 0.005;
        sleep_until(target);
        let late = now() - target;
        assert!(late >= 0.0);
        assert!(late < 0.05, "woke {late} s late");
    }

    #[test]
    fn cpu_time_grows_with_work() {
        let before = cpu_s();
        let end = now() + 0.05;
        let mut x = 0u64;
        while now() < end {
            x = x.wrapping_add(1);
        }
        assert!(x > 0);
        assert!(cpu_s() - before > 0.01);
    }
}
