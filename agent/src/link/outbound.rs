//! What the agent writes on its stream ([`Outbound`]) and the gRPC codec that writes it
//! ([`AgentCodec`]).
//!
//! A spooled batch goes out as the spool holds it, never decoded: the `AgentMessage` envelope
//! (field 2, `batch`), the spooled `Batch` bytes, then the fields filled in when it is sent,
//! `seq` (1), `dropped_samples` (3) and `kmsg` (5). Protobuf decoders take the last value of a
//! scalar field and merge repeated message fields, so the collector reads exactly the batch
//! with those fields set: the spooled bytes carry the batch's seq (the same, or an older
//! number before the spool renumbered) and never `dropped_samples` or `kmsg`. Decoding and
//! encoding every batch again was a sixth of the agent's instructions per tick. Only frames
//! read back from disk (a replay after a reconnect or a restart) are decoded, once, to check
//! them (`connection::pump`).
//!
//! ```text
//! 0x12 len | spooled Batch bytes | 0x08 seq | 0x18 dropped_samples | 0x2a len KmsgStatus
//! ```
//!
//! Every other message (hello, time echoes, policy reports, process lists) is encoded as
//! usual. The collector's messages are decoded as usual.

use fleet_proto::v1::{AgentMessage, CollectorMessage, KmsgStatus};
use prost::bytes::BufMut;
use prost::encoding::{encode_key, encode_varint, encoded_len_varint, key_len, WireType};
use prost::Message;
use tonic::codec::{Codec, EncodeBuf, Encoder};
use tonic::Status;
use tonic_prost::ProstDecoder;

/// `AgentMessage.batch`.
const AGENT_MESSAGE_BATCH: u32 = 2;
/// `Batch.seq`, `Batch.dropped_samples`, `Batch.kmsg`.
const BATCH_SEQ: u32 = 1;
const BATCH_DROPPED_SAMPLES: u32 = 3;
const BATCH_KMSG: u32 = 5;

/// One message on the agent's stream.
#[derive(Debug, Clone, PartialEq)]
pub enum Outbound {
    /// Encoded as usual.
    Message(AgentMessage),
    /// A spooled batch, sent as its bytes (see the module doc).
    Batch(SpooledBatch),
}

impl From<AgentMessage> for Outbound {
    fn from(msg: AgentMessage) -> Outbound {
        Outbound::Message(msg)
    }
}

impl Outbound {
    /// The message the collector decodes from this one (for tests and logs).
    ///
    /// # Errors
    /// The spooled bytes are not a `Batch`.
    pub fn to_message(&self) -> Result<AgentMessage, prost::DecodeError> {
        match self {
            Outbound::Message(msg) => Ok(msg.clone()),
            Outbound::Batch(b) => AgentMessage::decode(b.encode_to_vec().as_slice()),
        }
    }
}

/// A spooled `Batch` and the fields it is sent with.
#[derive(Debug, Clone, PartialEq)]
pub struct SpooledBatch {
    /// The `Batch` as the spool holds it.
    pub payload: Vec<u8>,
    pub seq: u64,
    pub dropped_samples: u64,
    pub kmsg: Option<KmsgStatus>,
}

impl SpooledBatch {
    /// The length of the `Batch` on the wire: the spooled bytes and the fields after them.
    fn batch_len(&self) -> usize {
        let mut len = self.payload.len() + key_len(BATCH_SEQ) + encoded_len_varint(self.seq);
        if self.dropped_samples != 0 {
            len += key_len(BATCH_DROPPED_SAMPLES) + encoded_len_varint(self.dropped_samples);
        }
        if let Some(k) = &self.kmsg {
            let n = k.encoded_len();
            len += key_len(BATCH_KMSG) + encoded_len_varint(n as u64) + n;
        }
        len
    }

    /// Writes the `AgentMessage` that carries this batch.
    pub fn encode(&self, buf: &mut impl BufMut) {
        let len = self.batch_len();
        encode_key(AGENT_MESSAGE_BATCH, WireType::LengthDelimited, buf);
        encode_varint(len as u64, buf);
        buf.put_slice(&self.payload);
        encode_key(BATCH_SEQ, WireType::Varint, buf);
        encode_varint(self.seq, buf);
        if self.dropped_samples != 0 {
            encode_key(BATCH_DROPPED_SAMPLES, WireType::Varint, buf);
            encode_varint(self.dropped_samples, buf);
        }
        if let Some(k) = &self.kmsg {
            encode_key(BATCH_KMSG, WireType::LengthDelimited, buf);
            encode_varint(k.encoded_len() as u64, buf);
            k.encode_raw(buf);
        }
    }

    /// The `AgentMessage`'s bytes.
    pub fn encode_to_vec(&self) -> Vec<u8> {
        let len = self.batch_len();
        let mut buf =
            Vec::with_capacity(key_len(AGENT_MESSAGE_BATCH) + encoded_len_varint(len as u64) + len);
        self.encode(&mut buf);
        buf
    }
}

/// The stream's codec: [`Outbound`] out, `CollectorMessage` in.
#[derive(Debug, Clone, Copy, Default)]
pub struct AgentCodec;

/// Writes [`Outbound`] messages.
#[derive(Debug, Clone, Copy, Default)]
pub struct OutboundEncoder;

impl Encoder for OutboundEncoder {
    type Item = Outbound;
    type Error = Status;

    fn encode(&mut self, item: Outbound, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        match item {
            Outbound::Message(msg) => msg
                .encode(dst)
                .map_err(|e| Status::internal(format!("encoding a message: {e}"))),
            Outbound::Batch(batch) => {
                batch.encode(dst);
                Ok(())
            }
        }
    }
}

impl Codec for AgentCodec {
    type Encode = Outbound;
    type Decode = CollectorMessage;
    type Encoder = OutboundEncoder;
    type Decoder = ProstDecoder<CollectorMessage>;

    fn encoder(&mut self) -> OutboundEncoder {
        OutboundEncoder
    }

    fn decoder(&mut self) -> ProstDecoder<CollectorMessage> {
        ProstDecoder::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fleet_proto::v1::{agent_message, Batch, OomEvent, Record, Sample};

    fn batch_message(batch: Batch) -> AgentMessage {
        AgentMessage {
            msg: Some(agent_message::Msg::Batch(batch)),
        }
    }

    fn spooled(batch: &Batch) -> Vec<u8> {
        batch.encode_to_vec()
    }

    /// The bytes sent decode as the batch with its send-time fields, whatever the spooled bytes
    /// said of seq (an older number before the spool renumbered), with and without the optional
    /// fields.
    #[test]
    fn a_spooled_batch_decodes_as_the_batch_with_its_fields() {
        let stored = Batch {
            seq: 7,
            samples: vec![Sample {
                time_ms: 1_700_000_000_000,
                interval_ms: 1000,
                records: vec![Record::default(); 3],
                ..Sample::default()
            }],
            oom_events: vec![OomEvent {
                victim_comm: Some("java".into()),
                ..OomEvent::default()
            }],
            ..Batch::default()
        };
        let kmsg = KmsgStatus {
            records_read: 12_345,
            records_lost: 0,
            unlogged_kills: 2,
        };
        for (seq, dropped, kmsg) in [(7, 0, None), (9_000_000_001, 42, Some(kmsg))] {
            let sent = SpooledBatch {
                payload: spooled(&stored),
                seq,
                dropped_samples: dropped,
                kmsg,
            };
            let expected = batch_message(Batch {
                seq,
                dropped_samples: dropped,
                kmsg,
                ..stored.clone()
            });
            let bytes = sent.encode_to_vec();
            assert_eq!(AgentMessage::decode(bytes.as_slice()).unwrap(), expected);
            assert_eq!(Outbound::Batch(sent).to_message().unwrap(), expected);
        }
    }

    /// An empty spooled batch (seq 0 is not encoded by prost) still carries its seq.
    #[test]
    fn an_empty_batch_gets_its_seq() {
        let sent = SpooledBatch {
            payload: Vec::new(),
            seq: 1,
            dropped_samples: 0,
            kmsg: None,
        };
        let msg = AgentMessage::decode(sent.encode_to_vec().as_slice()).unwrap();
        assert_eq!(
            msg,
            batch_message(Batch {
                seq: 1,
                ..Batch::default()
            })
        );
    }
}
