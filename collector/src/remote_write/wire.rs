//! The remote-write 1.0 wire format: `prometheus.WriteRequest` (from Prometheus's
//! `prompb/remote.proto` and `types.proto`, the fields protocol 1.0 uses), protobuf-encoded then
//! compressed with snappy's block format (not the framed one), and the headers of the POST.
//!
//! ```text
//! message WriteRequest { repeated TimeSeries timeseries = 1; }
//! message TimeSeries   { repeated Label labels = 1; repeated Sample samples = 2; }
//! message Label        { string name = 1; string value = 2; }
//! message Sample       { double value = 1; int64 timestamp = 2; }   // Unix ms
//! ```
//!
//! A series' labels are sorted by name, and its samples by time.

use prost::Message;

/// `Content-Type` of the body.
pub const CONTENT_TYPE: &str = "application/x-protobuf";
/// `Content-Encoding` of the body.
pub const CONTENT_ENCODING: &str = "snappy";
/// `X-Prometheus-Remote-Write-Version` of protocol 1.0.
pub const VERSION_HEADER: (&str, &str) = ("x-prometheus-remote-write-version", "0.1.0");

#[derive(Clone, PartialEq, Message)]
pub struct WriteRequest {
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
}

#[derive(Clone, PartialEq, Message)]
pub struct TimeSeries {
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Label {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

#[derive(Clone, Copy, PartialEq, Message)]
pub struct Sample {
    #[prost(double, tag = "1")]
    pub value: f64,
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

/// The body of a POST: `req` encoded and snappy-compressed.
///
/// # Errors
/// Only if snappy refuses the input (over its 4 GiB limit).
pub fn body(req: &WriteRequest) -> Result<Vec<u8>, snap::Error> {
    snap::raw::Encoder::new().compress_vec(&req.encode_to_vec())
}

/// A body back into its request (tests and fake receivers).
///
/// # Errors
/// A message when the body is not snappy or not a `WriteRequest`.
pub fn decode_body(body: &[u8]) -> Result<WriteRequest, String> {
    let raw = snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| format!("snappy: {e}"))?;
    WriteRequest::decode(&*raw).map_err(|e| format!("protobuf: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_round_trips_and_is_raw_snappy() {
        let req = WriteRequest {
            timeseries: vec![TimeSeries {
                labels: vec![Label {
                    name: "__name__".into(),
                    value: "fleet_cpu_idle_percent".into(),
                }],
                samples: vec![Sample {
                    value: 97.5,
                    timestamp: 1_700_000_000_123,
                }],
            }],
        };
        let b = body(&req).unwrap();
        // The framed format would start with its stream identifier chunk (0xff).
        assert_ne!(b[0], 0xff);
        assert_eq!(decode_body(&b).unwrap(), req);
        // Field numbers as in prompb: timeseries 1, labels 1, samples 2, value 1, timestamp 2.
        let raw = req.encode_to_vec();
        assert_eq!(raw[0], 0x0a);
    }
}
