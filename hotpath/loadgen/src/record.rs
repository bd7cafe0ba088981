//! One record per request, written as a packed little-endian table that NumPy reads as is
//! (`node/loadgen/result.py`, `RECORD_DTYPE`, must agree with this layout).

/// Bytes per record: four f64, two i32 and one u64 field, see [`Record::write_to`].
pub const RECORD_BYTES: usize = 48;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Record {
    /// When the request was meant to leave (CLOCK_MONOTONIC seconds); closed loop: when it left.
    pub intended_s: f64,
    /// How late it left, microseconds (the generator's own lag; 0 in the closed loop).
    pub lag_us: f64,
    /// From `intended_s` to the answer, microseconds.
    pub latency_us: f64,
    /// The node's own pipeline time (RankResponse.total_ms); NaN unless `code` is OK.
    pub total_ms: f64,
    /// gRPC status code.
    pub code: i32,
    /// RankResponse.served_by (the ServedBy number); 0 unless `code` is OK.
    pub served_by: i32,
    /// `response::version_hash` of RankResponse.bundle_version; 0 unless `code` is OK.
    pub version: u64,
}

impl Record {
    /// intended_s, lag_us, latency_us, total_ms as f64, code, served_by as i32, version as u64,
    /// little-endian.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.intended_s.to_le_bytes());
        out.extend_from_slice(&self.lag_us.to_le_bytes());
        out.extend_from_slice(&self.latency_us.to_le_bytes());
        out.extend_from_slice(&self.total_ms.to_le_bytes());
        out.extend_from_slice(&self.code.to_le_bytes());
        out.extend_from_slice(&self.served_by.to_le_bytes());
        out.extend_from_slice(&self.version.to_le_bytes());
    }
}

pub fn encode(records: &[Record]) -> Vec<u8> {
    let mut out = Vec::with_capacity(records.len() * RECORD_BYTES);
    for r in records {
        r.write_to(&mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_packed_little_endian() {
        let r = Record {
            intended_s: 1.5,
            lag_us: 2.0,
            latency_us: 3.0,
            total_ms: f64::NAN,
            code: 14,
            served_by: -1,
            version: 0x0102_0304_0506_0708,
        };
        let bytes = encode(&[r, r]);
        assert_eq!(bytes.len(), 2 * RECORD_BYTES);
        assert_eq!(&bytes[0..8], &1.5f64.to_le_bytes());
        assert!(f64::from_le_bytes(bytes[24..32].try_into().unwrap()).is_nan());
        assert_eq!(&bytes[32..36], &14i32.to_le_bytes());
        assert_eq!(&bytes[36..40], &(-1i32).to_le_bytes());
        assert_eq!(&bytes[40..48], &0x0102_0304_0506_0708u64.to_le_bytes());
        assert_eq!(&bytes[48..56], &1.5f64.to_le_bytes());
    }
}
