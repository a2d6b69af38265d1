//! DeleteGroups (42) responses at every version kastle serves: the crate's
//! encoding up to version 2, and version 3, past the `kafka-protocol`
//! crate, written here. Version 3 is version 2's layout plus each result's
//! `ErrorMessage` (a compact nullable string after its error code). kastle's
//! answers carry no message, as the codes Kafka's group coordinator answers
//! itself carry none (messages come only from its streams-topology plugin
//! and failed coordinator writes): every message is null. A version 3
//! request is version 2's (`versions::SAME_REQUEST_AS`).

use kafka_protocol::messages::DeleteGroupsResponse;

use super::wire::{DecodeError, Reader, Writer};

/// The newest version the crate has.
pub const CRATE_MAX: i16 = 2;

/// The version 3 body (every version from 3 on; older ones are the
/// crate's, `Request::respond_past_crate`).
pub fn write_v3(r: &DeleteGroupsResponse) -> Vec<u8> {
    let mut w = Writer::default();
    w.i32(r.throttle_time_ms);
    w.arr(&r.results, |w, r| {
        w.str(r.group_id.0.as_str());
        w.i16(r.error_code);
        w.nstr(None);
        w.tags();
    });
    w.tags();
    w.0
}

/// One result of a version 3 response, as a client reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletableGroupResult {
    pub group_id: String,
    pub error_code: i16,
    pub error_message: Option<String>,
}

/// Reads a version 3 response body (for clients and tests): its throttle
/// and results.
pub fn read_v3(body: &[u8]) -> Result<(i32, Vec<DeletableGroupResult>), DecodeError> {
    let mut r = Reader::new(body, "DeleteGroupsResponse v3");
    let throttle = r.i32()?;
    let results = r.arr(|r| {
        let g = DeletableGroupResult {
            group_id: r.str()?,
            error_code: r.i16()?,
            error_message: r.nstr()?,
        };
        r.tags()?;
        Ok(g)
    })?;
    r.tags()?;
    r.end()?;
    Ok((throttle, results))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use kafka_protocol::messages::delete_groups_response::DeletableGroupResult as CrateResult;
    use kafka_protocol::messages::GroupId;
    use kafka_protocol::protocol::Encodable;
    use kafka_protocol::protocol::StrBytes;

    fn sample() -> DeleteGroupsResponse {
        let result = |g: &'static str, code| {
            CrateResult::default()
                .with_group_id(GroupId(StrBytes::from_static_str(g)))
                .with_error_code(code)
        };
        DeleteGroupsResponse::default()
            .with_throttle_time_ms(7)
            .with_results(vec![result("g1", 0), result("g2", 69)])
    }

    fn encoded(r: &DeleteGroupsResponse, version: i16) -> Vec<u8> {
        let mut b = BytesMut::new();
        r.encode(&mut b, version).expect("encodes");
        b.to_vec()
    }

    #[test]
    fn version_3_is_version_2_with_a_null_message_per_result() {
        let r = sample();
        let v2 = encoded(&r, 2);
        // throttle, 2 results + 1, then "g1" (3), error 0, tags
        let mut want = v2.clone();
        want.insert(4 + 1 + 3 + 2, 0);
        want.insert(4 + 1 + (3 + 2 + 1 + 1) + 3 + 2, 0);
        assert_eq!(write_v3(&r), want);
        let (throttle, results) = read_v3(&want).expect("reads");
        assert_eq!(throttle, 7);
        assert_eq!(
            results,
            vec![
                DeletableGroupResult {
                    group_id: "g1".into(),
                    error_code: 0,
                    error_message: None
                },
                DeletableGroupResult {
                    group_id: "g2".into(),
                    error_code: 69,
                    error_message: None
                },
            ]
        );
        assert!(read_v3(&want[..want.len() - 1]).is_err());
    }
}
