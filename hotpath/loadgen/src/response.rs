//! What the generator reads of an answer: the gRPC status, and two fields of `RankResponse`.

use http::HeaderMap;
use prost::Message;

/// gRPC status codes the generator produces itself (the server's own arrive in `grpc-status`).
pub const OK: i32 = 0;
pub const UNKNOWN: i32 = 2;
pub const DEADLINE_EXCEEDED: i32 = 4;
pub const INTERNAL: i32 = 13;
pub const UNAVAILABLE: i32 = 14;

/// The two fields of `edgerank.v1.RankResponse` (proto/edgerank/v1/ranker.proto) the load generator
/// reports; prost skips the others. `served_by` is the `ServedBy` enum's number.
#[derive(Clone, PartialEq, Message)]
pub struct RankResponseHead {
    #[prost(int32, tag = "4")]
    pub served_by: i32,
    #[prost(double, tag = "8")]
    pub total_ms: f64,
}

/// The outcome of one call: a status code; for OK, the rung and the node's own pipeline time.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Outcome {
    pub code: i32,
    pub served_by: i32,
    pub total_ms: f64,
}

impl Outcome {
    pub fn status(code: i32) -> Self {
        Outcome {
            code,
            served_by: 0,
            total_ms: f64::NAN,
        }
    }
}

/// `grpc-status` of a header block (response headers of a trailers-only answer, or trailers).
pub fn grpc_status(headers: &HeaderMap) -> Option<i32> {
    headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.parse().ok())
}

/// The 5-byte gRPC frame around a message: not compressed, big-endian length.
pub fn frame(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + message.len());
    out.push(0);
    out.extend_from_slice(&(message.len() as u32).to_be_bytes());
    out.extend_from_slice(message);
    out
}

/// Decode an OK answer's body (one framed, uncompressed `RankResponse`).
pub fn decode(body: &[u8]) -> Result<Outcome, String> {
    if body.len() < 5 {
        return Err(format!(
            "answer body of {} bytes, shorter than a gRPC frame header",
            body.len()
        ));
    }
    if body[0] != 0 {
        return Err("compressed answer: the generator asks for none".to_string());
    }
    let len = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
    if body.len() != 5 + len {
        return Err(format!(
            "answer frame says {len} bytes, the body holds {}",
            body.len() - 5
        ));
    }
    let head = RankResponseHead::decode(&body[5..])
        .map_err(|e| format!("cannot decode RankResponse: {e}"))?;
    Ok(Outcome {
        code: OK,
        served_by: head.served_by,
        total_ms: head.total_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A RankResponse with fields before, between and after the two read (items = 1, request_id = 7).
    fn response_bytes(served_by: i32, total_ms: f64) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&[0x0a, 0x03, 0x0a, 0x01, b'x']); // items { item_id: "x" }
        m.extend_from_slice(&[0x12, 0x02, b'v', b'1']); // bundle_version
        m.extend_from_slice(&[0x20, served_by as u8]); // served_by (varint)
        m.extend_from_slice(&[0x3a, 0x02, b'r', b'1']); // request_id
        m.push(0x41); // total_ms (fixed64)
        m.extend_from_slice(&total_ms.to_le_bytes());
        m
    }

    #[test]
    fn reads_rung_and_total_ms_among_other_fields() {
        let out = decode(&frame(&response_bytes(3, 1.25))).unwrap();
        assert_eq!(
            out,
            Outcome {
                code: OK,
                served_by: 3,
                total_ms: 1.25
            }
        );
    }

    #[test]
    fn refuses_short_compressed_and_mislengthed_frames() {
        assert!(decode(&[0, 0]).unwrap_err().contains("shorter"));
        let mut compressed = frame(&response_bytes(1, 1.0));
        compressed[0] = 1;
        assert!(decode(&compressed).unwrap_err().contains("compressed"));
        let mut long = frame(&response_bytes(1, 1.0));
        long.push(0);
        assert!(decode(&long).unwrap_err().contains("says"));
    }

    #[test]
    fn status_from_headers() {
        let mut h = HeaderMap::new();
        assert_eq!(grpc_status(&h), None);
        h.insert("grpc-status", "14".parse().unwrap());
        assert_eq!(grpc_status(&h), Some(UNAVAILABLE));
        h.insert("grpc-status", "x".parse().unwrap());
        assert_eq!(grpc_status(&h), None);
    }
}
