//! `edgerank-loadgen`: the process behind `edgerank bench latency` (node/loadgen/workers.py).
//!
//! ```text
//! edgerank-loadgen --target HOST:PORT --requests FILE [--connections N] [--timeout-ms MS] [--connect-ms MS]
//! ```
//!
//! FILE holds the RankRequests to cycle, each as a little-endian u32 length and the serialized
//! message. Once connected the process prints `ready`, then runs one job per line of stdin and
//! answers each with one line on stdout:
//!
//! ```text
//! open START OFFSETS_FILE OUT_FILE DRAIN_S   -> done SENT CPU_S   (or: error MESSAGE)
//! closed START DURATION_S OUT_FILE           -> done SENT CPU_S
//! stop                                       (no answer of its own)
//! ```
//!
//! `stop` ends the schedule of the latest open job given (running or not yet started) at its next
//! send: the job then waits for the answers of what it sent and answers `done` as usual. It lets a
//! caller run a load for as long as it needs (a schedule longer than it will ever use) and end it.
//!
//! START is a CLOCK_MONOTONIC time in seconds (Python's `time.monotonic()`); OFFSETS_FILE holds
//! little-endian f64 seconds after START; OUT_FILE receives one record per request (record.rs).
//! CPU_S is the CPU this process used during the job. The process exits at end of input.

mod channel;
mod clock;
mod record;
mod response;
mod run;

use std::io::{BufRead, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use bytes::Bytes;

use channel::Channel;

struct Args {
    target: String,
    requests: String,
    connections: usize,
    timeout_ms: u64,
    connect_ms: u64,
}

fn millis(value: String, flag: &str) -> Result<u64, String> {
    value.parse().ok().filter(|&n| n >= 1).ok_or(format!(
        "{flag} must be a whole number of milliseconds >= 1, not {value:?}"
    ))
}

fn parse_args() -> Result<Args, String> {
    let mut target = None;
    let mut requests = None;
    let mut connections = 4usize;
    let mut timeout_ms = 2000u64;
    let mut connect_ms = 30_000u64;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--target" => target = Some(value()?),
            "--requests" => requests = Some(value()?),
            "--connections" => {
                connections = value()?
                    .parse()
                    .ok()
                    .filter(|&n| n >= 1)
                    .ok_or("--connections must be a whole number >= 1")?
            }
            "--timeout-ms" => timeout_ms = millis(value()?, &flag)?,
            "--connect-ms" => connect_ms = millis(value()?, &flag)?,
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(Args {
        target: target.ok_or("--target is required")?,
        requests: requests.ok_or("--requests is required")?,
        connections,
        timeout_ms,
        connect_ms,
    })
}

/// The framed requests of a requests file (u32 LE length + message, repeated).
fn read_requests(path: &str) -> Result<Vec<Bytes>, String> {
    let data = std::fs::read(path).map_err(|e| format!("cannot read requests file {path}: {e}"))?;
    let mut out = Vec::new();
    let mut at = 0;
    while at < data.len() {
        let len_bytes: [u8; 4] =
            data.get(at..at + 4)
                .and_then(|b| b.try_into().ok())
                .ok_or(format!(
                    "requests file {path}: truncated length at byte {at}"
                ))?;
        let len = u32::from_le_bytes(len_bytes) as usize;
        let message = data.get(at + 4..at + 4 + len).ok_or(format!(
            "requests file {path}: truncated message at byte {at}"
        ))?;
        out.push(Bytes::from(response::frame(message)));
        at += 4 + len;
    }
    if out.is_empty() {
        return Err(format!("requests file {path} holds no request"));
    }
    Ok(out)
}

fn read_offsets(path: &str) -> Result<Vec<f64>, String> {
    let data = std::fs::read(path).map_err(|e| format!("cannot read offsets file {path}: {e}"))?;
    if data.len() % 8 != 0 {
        return Err(format!(
            "offsets file {path}: {} bytes, not whole f64s",
            data.len()
        ));
    }
    Ok(data
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().expect("chunks of 8")))
        .collect())
}

fn number<T: std::str::FromStr>(word: Option<&str>, what: &str) -> Result<T, String> {
    word.and_then(|w| w.parse().ok())
        .ok_or(format!("job: {what} missing or not a number"))
}

/// Job lines given and the latest one a `stop` named, both counted from 1.
#[derive(Default)]
struct Jobs {
    given: AtomicU64,
    stop_upto: AtomicU64,
}

/// Read stdin on a thread of its own, so that a `stop` reaches a job while it runs: job lines go to
/// the returned channel (closed at end of input), `stop` lines to `jobs.stop_upto`.
fn read_jobs(jobs: Arc<Jobs>) -> mpsc::Receiver<Result<String, String>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let line = match line {
                Ok(l) => l,
                Err(e) => {
                    let _ = tx.send(Err(format!("cannot read a job: {e}")));
                    return;
                }
            };
            match line.trim() {
                "" => continue,
                "stop" => jobs
                    .stop_upto
                    .store(jobs.given.load(Ordering::SeqCst), Ordering::SeqCst),
                _ => {
                    jobs.given.fetch_add(1, Ordering::SeqCst);
                    if tx.send(Ok(line)).is_err() {
                        return; // the main thread has exited
                    }
                }
            }
        }
    });
    rx
}

/// Run one job line; the answer line without its newline.
fn job(
    line: &str,
    rt: &tokio::runtime::Runtime,
    channel: &Arc<Channel>,
    requests: &[Bytes],
    stopped: &dyn Fn() -> bool,
) -> Result<String, String> {
    let mut words = line.split_whitespace();
    let kind = words.next().unwrap_or("");
    let cpu0 = clock::cpu_s();
    let (records, out_path) = match kind {
        "open" => {
            let start: f64 = number(words.next(), "START")?;
            let offsets = read_offsets(words.next().ok_or("job: OFFSETS_FILE missing")?)?;
            let out = words.next().ok_or("job: OUT_FILE missing")?;
            let drain_s: f64 = number(words.next(), "DRAIN_S")?;
            (
                run::open_loop(
                    rt.handle(),
                    channel,
                    requests,
                    &offsets,
                    start,
                    drain_s,
                    stopped,
                )?,
                out,
            )
        }
        "closed" => {
            let start: f64 = number(words.next(), "START")?;
            let duration_s: f64 = number(words.next(), "DURATION_S")?;
            let out = words.next().ok_or("job: OUT_FILE missing")?;
            (
                run::closed_loop(rt.handle(), channel, requests, start, duration_s),
                out,
            )
        }
        other => return Err(format!("unknown job {other:?}: expected open or closed")),
    };
    std::fs::write(out_path, record::encode(&records))
        .map_err(|e| format!("cannot write {out_path}: {e}"))?;
    Ok(format!(
        "done {} {:.6}",
        records.len(),
        clock::cpu_s() - cpu0
    ))
}

fn main() -> ExitCode {
    let fail = |message: String| {
        eprintln!("edgerank-loadgen: {message}");
        ExitCode::from(2)
    };
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => return fail(e),
    };
    clock::precise_sleeps(); // the main thread keeps the schedule
    let requests = match read_requests(&args.requests) {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    // One thread does the network; the main thread keeps the schedule.
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(format!("cannot start the runtime: {e}")),
    };
    let timeout = Duration::from_millis(args.timeout_ms);
    let channel = match rt.block_on(Channel::connect(
        &args.target,
        args.connections,
        timeout,
        Duration::from_millis(args.connect_ms),
    )) {
        Ok(c) => Arc::new(c),
        Err(e) => return fail(e),
    };
    let mut stdout = std::io::stdout().lock();
    let say = |out: &mut std::io::StdoutLock, line: &str| {
        writeln!(out, "{line}").and_then(|_| out.flush())
    };
    if say(&mut stdout, "ready").is_err() {
        return ExitCode::from(1);
    }
    let jobs = Arc::new(Jobs::default());
    for (number, line) in (1u64..).zip(read_jobs(Arc::clone(&jobs))) {
        let line = match line {
            Ok(l) => l,
            Err(e) => return fail(e),
        };
        let stopped = || jobs.stop_upto.load(Ordering::SeqCst) >= number;
        let answer =
            job(&line, &rt, &channel, &requests, &stopped).unwrap_or_else(|e| format!("error {e}"));
        if say(&mut stdout, &answer).is_err() {
            return ExitCode::from(1); // the parent went away
        }
    }
    ExitCode::SUCCESS
}
