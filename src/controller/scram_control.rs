//! `ScramControlManager` (Kafka's class of the same name): the decision of
//! AlterUserScramCredentials (KIP-554). [`decide`] is the validation Kafka's
//! controller makes (each user once per request, a non-empty name, a known
//! mechanism, iterations within [4096, 16384], a deletion of an existing
//! credential), shared by the standalone `ScramCredentialStore` and, in a
//! cluster, by [`alter_user_scram_credentials`], which turns the accepted
//! changes into UserScramCredentialRecord / RemoveUserScramCredentialRecord
//! over the metadata image. Pure: no I/O.

use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse,
};
use kafka_protocol::protocol::StrBytes;

use crate::broker::scram_credentials::{changes_of, decide};
use crate::metadata::records::{RemoveUserScramCredentialRecord, UserScramCredentialRecord};
use crate::metadata::{MetadataImage, MetadataRecord, RecordAndVersion};
use crate::security::scram::ScramMechanism;

/// AlterUserScramCredentials as the active controller decides it over
/// `image`: the records of the accepted changes (committed together, as
/// Kafka's `ControllerResult.atomicOf`) and the per-user answer.
pub fn alter_user_scram_credentials(
    image: &MetadataImage,
    req: &AlterUserScramCredentialsRequest,
) -> (Vec<RecordAndVersion>, AlterUserScramCredentialsResponse) {
    let (deletions, upsertions) = changes_of(req);
    let exists =
        |n: &str, m: ScramMechanism| image.scram.contains_key(&(n.to_string(), m.type_code()));
    let decided = decide(exists, deletions, upsertions);
    let mut records = Vec::new();
    for (name, m) in &decided.deletions {
        records.push(RecordAndVersion {
            record: MetadataRecord::RemoveUserScramCredential(RemoveUserScramCredentialRecord {
                name: name.clone(),
                mechanism: m.type_code(),
            }),
            version: 0,
        });
    }
    for (name, m, c) in &decided.upsertions {
        records.push(RecordAndVersion {
            record: MetadataRecord::UserScramCredential(UserScramCredentialRecord {
                name: name.clone(),
                mechanism: m.type_code(),
                salt: c.salt.clone(),
                stored_key: c.stored_key.clone(),
                server_key: c.server_key.clone(),
                iterations: c.iterations,
            }),
            version: 0,
        });
    }
    let results = decided
        .results()
        .into_iter()
        .map(|(user, r)| {
            let row = AlterUserScramCredentialsResult::default()
                .with_user(StrBytes::from_string(user))
                .with_error_message(None);
            match r {
                Ok(()) => row,
                Err((code, msg)) => row
                    .with_error_code(code.code())
                    .with_error_message(Some(StrBytes::from_string(msg))),
            }
        })
        .collect();
    (
        records,
        AlterUserScramCredentialsResponse::default().with_results(results),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::scram_credentials::credentials_of;
    use crate::security::scram::ScramCredential;
    use kafka_protocol::messages::alter_user_scram_credentials_request::{
        ScramCredentialDeletion, ScramCredentialUpsertion,
    };
    use kafka_protocol::ResponseError;

    fn up(name: &str, mechanism: i8, iterations: i32) -> ScramCredentialUpsertion {
        ScramCredentialUpsertion::default()
            .with_name(StrBytes::from_string(name.into()))
            .with_mechanism(mechanism)
            .with_iterations(iterations)
            .with_salt(bytes::Bytes::from_static(b"salt"))
            .with_salted_password(bytes::Bytes::from(vec![7u8; 32]))
    }

    fn del(name: &str, mechanism: i8) -> ScramCredentialDeletion {
        ScramCredentialDeletion::default()
            .with_name(StrBytes::from_string(name.into()))
            .with_mechanism(mechanism)
    }

    fn apply(image: &mut MetadataImage, records: &[RecordAndVersion]) {
        for r in records {
            image
                .apply(&r.record)
                .expect("the image takes the controller's records");
        }
    }

    fn code(resp: &AlterUserScramCredentialsResponse, user: &str) -> Option<i16> {
        resp.results
            .iter()
            .find(|r| r.user.as_str() == user)
            .map(|r| r.error_code)
    }

    #[test]
    fn upsertions_become_records_with_kafkas_per_user_errors() {
        let mut image = MetadataImage::default();
        let req = AlterUserScramCredentialsRequest::default()
            .with_deletions(vec![del("ghost", 1), del("", 1)])
            .with_upsertions(vec![
                up("alice", 1, 8192),
                up("alice2", 2, 4096),
                up("bob", 3, 8192),
                up("carol", 2, 100),
                up("dave", 2, 20000),
                up("eve", 1, 4096),
                up("eve", 2, 4096),
            ]);
        let (records, resp) = alter_user_scram_credentials(&image, &req);
        assert_eq!(code(&resp, "alice"), Some(0));
        assert_eq!(code(&resp, "alice2"), Some(0));
        assert_eq!(
            code(&resp, "ghost"),
            Some(ResponseError::ResourceNotFound.code())
        );
        assert_eq!(
            code(&resp, ""),
            Some(ResponseError::UnacceptableCredential.code())
        );
        assert_eq!(
            code(&resp, "bob"),
            Some(ResponseError::UnsupportedSaslMechanism.code())
        );
        assert_eq!(
            code(&resp, "carol"),
            Some(ResponseError::UnacceptableCredential.code())
        );
        assert_eq!(
            code(&resp, "dave"),
            Some(ResponseError::UnacceptableCredential.code())
        );
        assert_eq!(
            code(&resp, "eve"),
            Some(ResponseError::DuplicateResource.code())
        );
        assert_eq!(resp.results.len(), 8);
        // Only the two accepted users are written.
        assert_eq!(records.len(), 2);
        apply(&mut image, &records);
        let creds = credentials_of(&image);
        let alice = &creds["alice"][&ScramMechanism::Sha256];
        let expected = ScramCredential::from_salted_password(
            ScramMechanism::Sha256,
            b"salt",
            &[7u8; 32],
            8192,
        );
        assert_eq!(alice, &expected);
        assert!(creds["alice2"].contains_key(&ScramMechanism::Sha512));

        // A deletion of an existing credential is a RemoveUserScramCredentialRecord;
        // deleting it again is RESOURCE_NOT_FOUND and writes nothing.
        let req = AlterUserScramCredentialsRequest::default().with_deletions(vec![del("alice", 1)]);
        let (records, resp) = alter_user_scram_credentials(&image, &req);
        assert_eq!(code(&resp, "alice"), Some(0));
        assert!(matches!(
            records[0].record,
            MetadataRecord::RemoveUserScramCredential(_)
        ));
        apply(&mut image, &records);
        assert!(!credentials_of(&image).contains_key("alice"));
        let (records, resp) = alter_user_scram_credentials(&image, &req);
        assert!(records.is_empty());
        assert_eq!(
            code(&resp, "alice"),
            Some(ResponseError::ResourceNotFound.code())
        );
    }

    #[test]
    fn a_user_deleted_and_upserted_in_one_request_is_a_duplicate() {
        let mut image = MetadataImage::default();
        let (records, _) = alter_user_scram_credentials(
            &image,
            &AlterUserScramCredentialsRequest::default().with_upsertions(vec![up("u", 1, 4096)]),
        );
        apply(&mut image, &records);
        let (records, resp) = alter_user_scram_credentials(
            &image,
            &AlterUserScramCredentialsRequest::default()
                .with_deletions(vec![del("u", 1)])
                .with_upsertions(vec![up("u", 2, 4096)]),
        );
        assert!(records.is_empty());
        assert_eq!(resp.results.len(), 1);
        assert_eq!(
            code(&resp, "u"),
            Some(ResponseError::DuplicateResource.code())
        );
    }
}
