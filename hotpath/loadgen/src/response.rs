//! What the generator reads of an answer: the gRPC status, and three fields of `RankResponse`.

use http::HeaderMap;
use prost::Message;

/// gRPC status codes the generator produces itself (the server's own arrive in `grpc-status`).
pub const OK: i32 = 0;
pub const UNKNOWN: i32 = 2;
pub const DEADLINE_EXCEEDED: i32 = 4;
pub const INTERNAL: i32 = 13;
pub const UNAVAILABLE: i32 = 14;

/// The fields of `edgerank.v1.RankResponse` (proto/edgerank/v1/ranker.proto) the load generator
/// reports; prost skips the others. `served_by` is the `ServedBy` enum's number.
#[derive(Clone, PartialEq, Message)]
pub struct RankResponseHead {
    #[prost(bytes = "vec", tag = "2")]
    pub bundle_version: Vec<u8>,
    #[prost(int32, tag = "4")]
    pub served_by: i32,
    #[prost(double, tag = "8")]
    pub total_ms: f64,
}

/// The outcome of one call: a status code; for OK, the rung, the node's own pipeline time and the
/// bundle version that answered (as its `version_hash`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Outcome {
    pub code: i32,
    pub served_by: i32,
    pub total_ms: f64,
    pub version: u64,
}

/// FNV-1a, 64 bits, of a bundle version's bytes: a fixed-size record field that the caller maps back
/// to the versions it knows (node/loadgen/result.py `version_hash` computes the same). Never 0 for a
/// version (0 means no answer), so a hash that comes out 0 is moved to 1.
pub fn version_hash(version: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in version {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h.max(1)
}

impl Outcome {
    pub fn status(code: i32) -> Self {
        Outcome {
            code,
            served_by: 0,
            total_ms: f64::NAN,
            version: 0,
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
        version: version_hash(&head.bundle_version),
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
    fn reads_rung_total_ms_and_version_among_other_fields() {
        let out = decode(&frame(&response_bytes(3, 1.25))).unwrap();
        assert_eq!(
            out,
            Outcome {
                code: OK,
                served_by: 3,
                total_ms: 1.25,
                version: version_hash(b"v1"),
            }
        );
    }

    #[test]
    fn version_hash_is_fnv1a_64_and_never_zero() {
        // Reference values of FNV-1a 64 (also checked on the Python side, tests/loadgen).
        assert_eq!(version_hash(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(version_hash(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_ne!(version_hash(b"v1"), version_hash(b"v2"));
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
