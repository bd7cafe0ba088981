//! Unary `Rank` calls over a few HTTP/2 connections (gRPC over h2, prior knowledge, no TLS).
//!
//! Each connection is its own TCP connection, so that a node whose processes share the port with
//! SO_REUSEPORT sees connections it can spread across them. The kernel spreads them by a hash, not
//! evenly (16 connections over 2 processes often split 10 to 6), so a call goes to the connection
//! with the fewest calls in flight, ties in turn: a load balancer's "least request", which sends
//! less to a process that queues. A connection that fails is dropped and opened again by the next
//! call that picks it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use h2::client::SendRequest;
use http::{HeaderValue, Request, Uri};
use tokio::net::TcpStream;
use tokio::sync::Mutex;

use crate::response::{self, Outcome, DEADLINE_EXCEEDED, INTERNAL, OK, UNAVAILABLE, UNKNOWN};

const RANK_PATH: &str = "/edgerank.v1.Ranker/Rank";

pub struct Channel {
    target: String,
    uri: Uri,
    conns: Vec<Mutex<Option<SendRequest<Bytes>>>>,
    in_flight: Vec<AtomicUsize>,
    next: AtomicUsize,
    timeout: Duration,
    grpc_timeout: HeaderValue,
}

/// Why a call did not get an answer from the server; the connection is dropped when `broken`.
struct CallError {
    message: String,
    broken: bool,
    code: i32,
}

impl From<h2::Error> for CallError {
    fn from(e: h2::Error) -> Self {
        CallError {
            broken: e.is_io() || e.is_go_away(),
            message: e.to_string(),
            code: UNAVAILABLE,
        }
    }
}

async fn handshake(target: &str) -> Result<SendRequest<Bytes>, String> {
    let tcp = TcpStream::connect(target)
        .await
        .map_err(|e| format!("cannot connect to {target}: {e}"))?;
    tcp.set_nodelay(true)
        .map_err(|e| format!("cannot set TCP_NODELAY on {target}: {e}"))?;
    let (client, connection) = h2::client::Builder::new()
        .initial_window_size(1 << 20)
        .initial_connection_window_size(1 << 24)
        .handshake(tcp)
        .await
        .map_err(|e| format!("HTTP/2 handshake with {target} failed: {e}"))?;
    let target = target.to_string();
    tokio::spawn(async move {
        // The calls on a connection that ends fail with their own errors, which are counted; the
        // reason is logged here once.
        if let Err(e) = connection.await {
            eprintln!("edgerank-loadgen: connection to {target} ended: {e}");
        }
    });
    Ok(client)
}

impl Channel {
    /// Open `connections` connections to `target`, retrying until `ready_within` has passed.
    pub async fn connect(
        target: &str,
        connections: usize,
        timeout: Duration,
        ready_within: Duration,
    ) -> Result<Channel, String> {
        let uri: Uri = format!("http://{target}{RANK_PATH}")
            .parse()
            .map_err(|e| format!("target {target:?} is not HOST:PORT: {e}"))?;
        let deadline = tokio::time::Instant::now() + ready_within;
        let mut conns = Vec::with_capacity(connections);
        for _ in 0..connections {
            let client = loop {
                match handshake(target).await {
                    Ok(c) => break c,
                    Err(e) if tokio::time::Instant::now() >= deadline => return Err(e),
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            };
            conns.push(Mutex::new(Some(client)));
        }
        // gRPC's timeout header: at most 8 digits, here in milliseconds.
        let ms = timeout.as_millis().clamp(1, 99_999_999);
        Ok(Channel {
            target: target.to_string(),
            uri,
            in_flight: (0..conns.len()).map(|_| AtomicUsize::new(0)).collect(),
            conns,
            next: AtomicUsize::new(0),
            timeout,
            grpc_timeout: HeaderValue::from_str(&format!("{ms}m"))
                .expect("digits and 'm' are a valid header"),
        })
    }

    fn pick(&self) -> usize {
        least_busy(&self.in_flight, self.next.fetch_add(1, Ordering::Relaxed))
    }

    /// One `Rank` call with `framed` (a gRPC-framed RankRequest) on the least busy connection.
    pub async fn rank(&self, framed: Bytes) -> Outcome {
        let slot = self.pick();
        let _counted = InFlight::enter(&self.in_flight[slot]);
        match tokio::time::timeout(self.timeout, self.call(slot, framed)).await {
            Err(_) => Outcome::status(DEADLINE_EXCEEDED),
            Ok(Ok(outcome)) => outcome,
            Ok(Err(e)) => {
                if e.broken {
                    *self.conns[slot].lock().await = None;
                }
                log_once(&e.message);
                Outcome::status(e.code)
            }
        }
    }

    async fn client(&self, slot: usize) -> Result<SendRequest<Bytes>, CallError> {
        let mut conn = self.conns[slot].lock().await;
        if let Some(client) = conn.as_ref() {
            return Ok(client.clone());
        }
        let client = handshake(&self.target).await.map_err(|message| CallError {
            message,
            broken: false,
            code: UNAVAILABLE,
        })?;
        *conn = Some(client.clone());
        Ok(client)
    }

    async fn call(&self, slot: usize, framed: Bytes) -> Result<Outcome, CallError> {
        let mut client = self
            .client(slot)
            .await?
            .ready()
            .await
            .map_err(|e| CallError {
                broken: true,
                message: e.to_string(),
                code: UNAVAILABLE,
            })?;
        let request = Request::post(self.uri.clone())
            .header(http::header::CONTENT_TYPE, "application/grpc")
            .header(http::header::TE, "trailers")
            .header("grpc-timeout", self.grpc_timeout.clone())
            .body(())
            .expect("a POST with these headers is a valid request");
        let (answer, mut send) = client.send_request(request, false)?;
        send.send_data(framed, true)?;
        let (head, mut body) = answer.await?.into_parts();
        if let Some(code) = response::grpc_status(&head.headers) {
            return Ok(Outcome::status(code)); // trailers-only: an error status
        }
        if head.status != http::StatusCode::OK {
            return Ok(Outcome::status(UNKNOWN));
        }
        let mut message = BytesMut::new();
        while let Some(chunk) = body.data().await {
            let chunk = chunk?;
            body.flow_control().release_capacity(chunk.len())?;
            message.extend_from_slice(&chunk);
        }
        let code = body
            .trailers()
            .await?
            .as_ref()
            .and_then(response::grpc_status)
            .unwrap_or(UNKNOWN);
        if code != OK {
            return Ok(Outcome::status(code));
        }
        response::decode(&message).map_err(|message| CallError {
            message,
            broken: false,
            code: INTERNAL,
        })
    }
}

/// The connection with the fewest calls in flight: the first such from `turn % n` on.
fn least_busy(in_flight: &[AtomicUsize], turn: usize) -> usize {
    let n = in_flight.len();
    let first = turn % n;
    (first..first + n)
        .map(|i| i % n)
        .min_by_key(|&i| in_flight[i].load(Ordering::Relaxed))
        .expect("at least one connection")
}

/// One call counted in flight on its connection until dropped (answered, failed, or timed out).
struct InFlight<'a>(&'a AtomicUsize);

impl<'a> InFlight<'a> {
    fn enter(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        InFlight(count)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Print the first few distinct call errors to stderr (a failing node would otherwise flood it).
fn log_once(message: &str) {
    static LOGGED: AtomicUsize = AtomicUsize::new(0);
    if LOGGED.fetch_add(1, Ordering::Relaxed) < 5 {
        eprintln!("edgerank-loadgen: call failed: {message}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(values: &[usize]) -> Vec<AtomicUsize> {
        values.iter().map(|&v| AtomicUsize::new(v)).collect()
    }

    #[test]
    fn idle_connections_take_turns() {
        let idle = counts(&[0, 0, 0]);
        assert_eq!(
            (0..6).map(|t| least_busy(&idle, t)).collect::<Vec<_>>(),
            [0, 1, 2, 0, 1, 2]
        );
    }

    #[test]
    fn a_busy_connection_is_passed_over() {
        let busy = counts(&[3, 1, 2]);
        assert!((0..6).all(|t| least_busy(&busy, t) == 1));
        let tie = counts(&[1, 5, 1]);
        assert_eq!(
            (0..3).map(|t| least_busy(&tie, t)).collect::<Vec<_>>(),
            [0, 2, 2]
        );
    }

    #[test]
    fn in_flight_counts_until_dropped() {
        let c = AtomicUsize::new(0);
        {
            let _a = InFlight::enter(&c);
            let _b = InFlight::enter(&c);
            assert_eq!(c.load(Ordering::Relaxed), 2);
        }
        assert_eq!(c.load(Ordering::Relaxed), 0);
    }
}
