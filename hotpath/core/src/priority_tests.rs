use super::*;

#[test]
fn the_work_runs_lowered_and_the_caller_keeps_its_priority() {
    let before = own_niceness().expect("Linux keeps a niceness per thread");
    let caller = std::thread::current().id();
    let (inside, thread) = run_niced(5, || (own_niceness(), std::thread::current().id()));
    assert_eq!(inside, Some((before + 5).min(MAX_NICENESS)));
    assert_ne!(thread, caller, "the work ran on the calling thread");
    assert_eq!(
        own_niceness(),
        Some(before),
        "the caller's niceness changed"
    );
}

#[test]
fn no_niceness_runs_on_the_calling_thread() {
    let caller = std::thread::current().id();
    for niceness in [0, -3] {
        assert_eq!(run_niced(niceness, || std::thread::current().id()), caller);
    }
}

#[test]
fn the_niceness_stops_at_the_highest() {
    let inside = run_niced(1000, own_niceness);
    assert_eq!(inside, Some(MAX_NICENESS));
}

#[test]
fn the_work_may_borrow_and_return() {
    let table: Vec<u64> = (0..1000).collect();
    let sum = run_niced(3, || table.iter().sum::<u64>());
    assert_eq!(sum, 499_500);
}

#[test]
fn a_panic_in_the_work_reaches_the_caller() {
    let caught = std::panic::catch_unwind(|| run_niced(2, || -> u8 { panic!("bulk step failed") }));
    let payload = caught.expect_err("the panic was lost");
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"bulk step failed"));
}
