//! The two ways of sending: on a schedule (open loop), and one request in flight (closed loop).
//!
//! Open loop: the calling thread waits for each intended send time (`clock::sleep_until`, precise to
//! microseconds, which tokio's millisecond timer is not) and hands the call to the runtime; a
//! request's latency runs from its intended time, so whatever delays a send (the generator itself,
//! or a node that stopped reading) is charged to the requests it delayed: no coordinated omission.

use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::runtime::Handle;

use crate::channel::Channel;
use crate::clock;
use crate::record::Record;
use crate::response::Outcome;

fn record(intended_s: f64, sent_s: f64, done_s: f64, o: Outcome) -> Record {
    Record {
        intended_s,
        lag_us: (sent_s - intended_s) * 1e6,
        latency_us: (done_s - intended_s) * 1e6,
        total_ms: o.total_ms,
        code: o.code,
        served_by: o.served_by,
        version: o.version,
    }
}

/// Send `requests` (cycled) at `start + offsets[k]` and wait up to `drain_s` after the last send for
/// every answer. `stopped()` is asked before each send: once it says yes the schedule ends there (the
/// requests sent so far are still awaited). The records are in schedule order.
pub fn open_loop(
    rt: &Handle,
    channel: &Arc<Channel>,
    requests: &[Bytes],
    offsets: &[f64],
    start: f64,
    drain_s: f64,
    stopped: &dyn Fn() -> bool,
) -> Result<Vec<Record>, String> {
    let (tx, rx) = mpsc::channel::<(usize, Record)>();
    let mut n = 0;
    for (k, offset) in offsets.iter().enumerate() {
        let intended = start + offset;
        clock::sleep_until(intended);
        if stopped() {
            break;
        }
        n = k + 1;
        let sent = clock::now();
        let (channel, tx) = (Arc::clone(channel), tx.clone());
        let framed = requests[k % requests.len()].clone();
        rt.spawn(async move {
            let outcome = channel.rank(framed).await;
            // The receiver is gone only once the run has given up waiting; the answer is then moot.
            let _ = tx.send((k, record(intended, sent, clock::now(), outcome)));
        });
    }
    drop(tx);
    let deadline = clock::now() + drain_s;
    let mut out: Vec<Option<Record>> = vec![None; n];
    let mut received = 0;
    while received < n {
        let left = deadline - clock::now();
        match rx.recv_timeout(Duration::from_secs_f64(left.max(0.0))) {
            Ok((k, r)) => {
                out[k] = Some(r);
                received += 1;
            }
            Err(_) => {
                return Err(format!(
                    "{} of {n} requests got no answer within {drain_s:.0} s of the last send",
                    n - received
                ))
            }
        }
    }
    Ok(out.into_iter().flatten().collect())
}

/// One request at a time, back to back, from `start` for `duration_s`.
pub fn closed_loop(
    rt: &Handle,
    channel: &Arc<Channel>,
    requests: &[Bytes],
    start: f64,
    duration_s: f64,
) -> Vec<Record> {
    clock::sleep_until(start);
    let end = start + duration_s;
    rt.block_on(async {
        let mut out = Vec::new();
        loop {
            let sent = clock::now();
            if sent >= end {
                break out;
            }
            let outcome = channel
                .rank(requests[out.len() % requests.len()].clone())
                .await;
            out.push(record(sent, sent, clock::now(), outcome));
        }
    })
}
