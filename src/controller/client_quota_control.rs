//! `ClientQuotaControlManager` (Kafka's class of the same name): the
//! decision of AlterClientQuotas in a cluster: [`alter_client_quotas`]
//! checks each entity with the validation the standalone
//! `ClientQuotaManager` uses too (`broker::quotas::validate_alteration`,
//! Kafka's controller checks: entity types and names, their combination,
//! known keys, positive values, whole numbers for the integral keys) and
//! turns what changes into ClientQuotaRecords over the metadata image.
//! Pure: no I/O.

use std::collections::HashSet;

use kafka_protocol::messages::alter_client_quotas_response::{EntityData, EntryData};
use kafka_protocol::messages::{AlterClientQuotasRequest, AlterClientQuotasResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use crate::broker::quotas::{
    entity_string, entries_of, validate_alteration, Entity, QuotaMap, QuotaOp,
};
use crate::metadata::records::ClientQuotaRecord;
use crate::metadata::{MetadataImage, MetadataRecord, RecordAndVersion};

/// Each distinct entity's outcome: success or Kafka's message.
pub type EntityOutcomes = Vec<(Entity, Result<(), String>)>;

/// AlterClientQuotas as Kafka's controller decides it over the quotas in
/// force: one outcome per distinct entity (an entity named again is refused
/// with "Ignoring duplicate entity", as is one with a key named twice), and
/// a record for each value that changes (a removal only of a key that is
/// set, a value only when it differs).
pub fn decide(
    current: &QuotaMap,
    entries: Vec<(Entity, Vec<QuotaOp>)>,
) -> (Vec<ClientQuotaRecord>, EntityOutcomes) {
    let mut records = Vec::new();
    let mut results: EntityOutcomes = Vec::new();
    for (mut entity, ops) in entries {
        entity.sort();
        let seen = results.iter().position(|(e, _)| *e == entity);
        let mut keys = HashSet::new();
        let dup_key = ops.iter().any(|o| !keys.insert(o.key.as_str()));
        if seen.is_some() || dup_key {
            let refusal = Err(format!(
                "Ignoring duplicate entity {}",
                entity_string(&entity)
            ));
            match seen {
                Some(i) => results[i].1 = refusal,
                None => results.push((entity, refusal)),
            }
            continue;
        }
        let outcome = validate_alteration(&entity, &ops);
        if outcome.is_ok() {
            let values = current.get(&entity);
            for o in ops {
                let now = values.and_then(|v| v.get(&o.key)).copied();
                let changes = if o.remove {
                    now.is_some()
                } else {
                    now.map(f64::to_bits) != Some(o.value.to_bits())
                };
                if changes {
                    records.push(ClientQuotaRecord {
                        entity: entity.clone(),
                        key: o.key,
                        value: if o.remove { 0.0 } else { o.value },
                        remove: o.remove,
                    });
                }
            }
        }
        results.push((entity, outcome));
    }
    (records, results)
}

/// AlterClientQuotas on the active controller: the records (none when
/// `validate_only`) and the answer, an entry per distinct entity with
/// INVALID_REQUEST and Kafka's message for a refused one.
pub fn alter_client_quotas(
    image: &MetadataImage,
    req: &AlterClientQuotasRequest,
) -> (Vec<RecordAndVersion>, AlterClientQuotasResponse) {
    let (records, results) = decide(&image.client_quotas.0, entries_of(req));
    let records = if req.validate_only {
        Vec::new()
    } else {
        records
            .into_iter()
            .map(|r| RecordAndVersion {
                record: MetadataRecord::ClientQuota(r),
                version: 0,
            })
            .collect()
    };
    let entries = results
        .into_iter()
        .map(|(entity, outcome)| {
            let entity = entity
                .into_iter()
                .map(|(t, n)| {
                    EntityData::default()
                        .with_entity_type(StrBytes::from_string(t))
                        .with_entity_name(n.map(StrBytes::from_string))
                })
                .collect();
            let row = EntryData::default()
                .with_entity(entity)
                .with_error_message(None);
            match outcome {
                Ok(()) => row,
                Err(m) => row
                    .with_error_code(ResponseError::InvalidRequest.code())
                    .with_error_message(Some(StrBytes::from_string(m))),
            }
        })
        .collect();
    (
        records,
        AlterClientQuotasResponse::default().with_entries(entries),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::alter_client_quotas_request::{
        EntityData as ReqEntity, EntryData as ReqEntry, OpData,
    };

    fn entry(entity: &[(&str, Option<&str>)], ops: &[(&str, f64, bool)]) -> ReqEntry {
        ReqEntry::default()
            .with_entity(
                entity
                    .iter()
                    .map(|(t, n)| {
                        ReqEntity::default()
                            .with_entity_type(StrBytes::from_string(t.to_string()))
                            .with_entity_name(n.map(|n| StrBytes::from_string(n.to_string())))
                    })
                    .collect(),
            )
            .with_ops(
                ops.iter()
                    .map(|(k, v, remove)| {
                        OpData::default()
                            .with_key(StrBytes::from_string(k.to_string()))
                            .with_value(*v)
                            .with_remove(*remove)
                    })
                    .collect(),
            )
    }

    fn outcome(resp: &AlterClientQuotasResponse, i: usize) -> (i16, Option<String>) {
        let e = &resp.entries[i];
        (
            e.error_code,
            e.error_message.as_ref().map(|m| m.to_string()),
        )
    }

    fn apply(image: &mut MetadataImage, records: &[RecordAndVersion]) {
        for r in records {
            image
                .apply(&r.record)
                .expect("the image takes the controller's records");
        }
    }

    #[test]
    fn kafkas_checks_and_messages() {
        let image = MetadataImage::default();
        let invalid = ResponseError::InvalidRequest.code();
        let cases: Vec<(ReqEntry, &str)> = vec![
            (entry(&[], &[]), "Invalid empty client quota entity"),
            (
                entry(&[("group", Some("g"))], &[("producer_byte_rate", 1.0, false)]),
                "Unhandled client quota entity type: group",
            ),
            (
                entry(&[("user", Some(""))], &[]),
                "Empty user not supported",
            ),
            (
                entry(&[("ip", Some("1.2.3.4")), ("user", Some("u"))], &[]),
                "Invalid quota entity combination, IP entity shouldnot be combined with User or ClientId",
            ),
            (
                entry(&[("ip", Some("not an ip"))], &[]),
                "not an ip is not a valid IP or resolvable host.",
            ),
            (
                entry(&[("client-id", Some("a"))], &[("bogus", 1.0, false)]),
                "Invalid configuration key bogus",
            ),
            (
                entry(&[("client-id", Some("b"))], &[("producer_byte_rate", 0.0, false)]),
                "Quota producer_byte_rate must be greater than 0",
            ),
            (
                entry(&[("client-id", Some("c"))], &[("consumer_byte_rate", 1.5, false)]),
                "consumer_byte_rate cannot be a fractional value.",
            ),
            (
                entry(&[("ip", None)], &[("connection_creation_rate", 3e9, false)]),
                "Proposed value for connection_creation_rate is too large for an INT.",
            ),
            (
                entry(&[("ip", Some("10.0.0.1"))], &[("producer_byte_rate", 1.0, false)]),
                "Invalid configuration key producer_byte_rate",
            ),
            (
                entry(
                    &[("user", Some("d"))],
                    &[("producer_byte_rate", 1.0, false), ("producer_byte_rate", 2.0, false)],
                ),
                "Ignoring duplicate entity ClientQuotaEntity(entries={user=d})",
            ),
        ];
        for (e, message) in cases {
            let req = AlterClientQuotasRequest::default().with_entries(vec![e]);
            let (records, resp) = alter_client_quotas(&image, &req);
            assert!(records.is_empty(), "{message}");
            assert_eq!(outcome(&resp, 0), (invalid, Some(message.to_string())));
        }
    }

    #[test]
    fn records_only_for_what_changes_and_entities_once() {
        let mut image = MetadataImage::default();
        let req = AlterClientQuotasRequest::default().with_entries(vec![
            entry(
                &[("user", Some("alice")), ("client-id", None)],
                &[
                    ("producer_byte_rate", 1024.0, false),
                    ("request_percentage", 12.5, false),
                ],
            ),
            entry(
                &[("client-id", Some("app"))],
                &[("consumer_byte_rate", 2048.0, false)],
            ),
        ]);
        let (records, resp) = alter_client_quotas(&image, &req);
        assert_eq!(records.len(), 3);
        assert_eq!(resp.entries.len(), 2);
        assert!(resp.entries.iter().all(|e| e.error_code == 0));
        apply(&mut image, &records);
        let alice: Entity = vec![
            ("client-id".into(), None),
            ("user".into(), Some("alice".into())),
        ];
        assert_eq!(image.client_quotas.0[&alice]["request_percentage"], 12.5);

        // The same values again change nothing; removing an unset key
        // writes nothing; removing a set one writes a removal.
        let (records, _) = alter_client_quotas(&image, &req);
        assert!(records.is_empty());
        let req = AlterClientQuotasRequest::default().with_entries(vec![entry(
            &[("client-id", Some("app"))],
            &[
                ("consumer_byte_rate", 0.0, true),
                ("producer_byte_rate", 0.0, true),
            ],
        )]);
        let (records, resp) = alter_client_quotas(&image, &req);
        assert_eq!(outcome(&resp, 0), (0, None));
        assert_eq!(records.len(), 1);
        apply(&mut image, &records);
        assert!(!image
            .client_quotas
            .0
            .contains_key(&vec![("client-id".to_string(), Some("app".to_string()))]));

        // validate_only answers without records.
        let req = AlterClientQuotasRequest::default()
            .with_validate_only(true)
            .with_entries(vec![entry(
                &[("user", None)],
                &[("consumer_byte_rate", 5.0, false)],
            )]);
        let (records, resp) = alter_client_quotas(&image, &req);
        assert!(records.is_empty());
        assert_eq!(outcome(&resp, 0), (0, None));

        // An entity named twice: its first alteration's records stay (as in
        // Kafka's controller), its answer is the duplicate refusal.
        let req = AlterClientQuotasRequest::default().with_entries(vec![
            entry(
                &[("user", Some("bob"))],
                &[("consumer_byte_rate", 5.0, false)],
            ),
            entry(
                &[("user", Some("bob"))],
                &[("consumer_byte_rate", 6.0, false)],
            ),
        ]);
        let (records, resp) = alter_client_quotas(&image, &req);
        assert_eq!(records.len(), 1);
        assert_eq!(resp.entries.len(), 1);
        assert_eq!(
            outcome(&resp, 0).1.as_deref(),
            Some("Ignoring duplicate entity ClientQuotaEntity(entries={user=bob})")
        );
    }
}
