//! Responses of versions past the `kafka-protocol` crate whose body layout
//! is an older version's: `SameAsVersion::<V, _>` encodes versions from `V`
//! on with the crate's version `V` (its header too), and older versions as
//! themselves. WriteTxnMarkers 2 is version 1's response, ListOffsets 11
//! version 10's: only the request's meaning changed.

use kafka_protocol::protocol::buf::ByteBufMut;
use kafka_protocol::protocol::{Encodable, HeaderVersion};

/// `T` encoded at `min(version, V)`.
pub struct SameAsVersion<const V: i16, T>(pub T);

impl<const V: i16, T: Encodable> Encodable for SameAsVersion<V, T> {
    fn encode<B: ByteBufMut>(&self, buf: &mut B, version: i16) -> anyhow::Result<()> {
        self.0.encode(buf, version.min(V))
    }
    fn compute_size(&self, version: i16) -> anyhow::Result<usize> {
        self.0.compute_size(version.min(V))
    }
}

impl<const V: i16, T: HeaderVersion> HeaderVersion for SameAsVersion<V, T> {
    fn header_version(version: i16) -> i16 {
        T::header_version(version.min(V))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use kafka_protocol::messages::list_offsets_response::{
        ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
    };
    use kafka_protocol::messages::{ListOffsetsResponse, TopicName};
    use kafka_protocol::protocol::StrBytes;

    fn encoded<R: Encodable>(r: &R, version: i16) -> BytesMut {
        let mut b = BytesMut::new();
        r.encode(&mut b, version).expect("encodes");
        assert_eq!(r.compute_size(version).expect("sized"), b.len());
        b
    }

    #[test]
    fn newer_versions_take_the_older_layout_older_ones_their_own() {
        let r = ListOffsetsResponse::default()
            .with_throttle_time_ms(3)
            .with_topics(vec![ListOffsetsTopicResponse::default()
                .with_name(TopicName(StrBytes::from_static_str("t")))
                .with_partitions(vec![ListOffsetsPartitionResponse::default()
                    .with_offset(-1)
                    .with_timestamp(-1)
                    .with_leader_epoch(-1)])]);
        let same = SameAsVersion::<10, _>(r.clone());
        assert_eq!(encoded(&same, 11), encoded(&r, 10));
        for v in [1, 4, 6, 10] {
            assert_eq!(encoded(&same, v), encoded(&r, v), "v{v}");
            assert_eq!(
                <SameAsVersion<10, ListOffsetsResponse> as HeaderVersion>::header_version(v),
                ListOffsetsResponse::header_version(v)
            );
        }
        assert_eq!(
            <SameAsVersion<10, ListOffsetsResponse> as HeaderVersion>::header_version(11),
            1
        );
    }
}
