//! Kafka's `FeatureControlManager`: the finalized feature levels (KIP-584)
//! and the decision of UpdateFeatures over them. A level never recorded is
//! the feature's unrecorded one (a cluster or standalone directory an older
//! kastle created); a new cluster records its levels in its first batch
//! ([`level_records`]), a new standalone directory in
//! `broker::finalized_features`. A change is
//! kept as a FeatureLevelRecord in a cluster's metadata log, and in a
//! standalone broker's own file (`broker::finalized_features`). Both decide with [`decide`], so the
//! checks and Kafka's messages are the same. Pure: no I/O.

use kafka_protocol::messages::update_features_response::UpdatableFeatureResult;
use kafka_protocol::messages::{UpdateFeaturesRequest, UpdateFeaturesResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use crate::metadata::records::{BrokerFeature, FeatureLevelRecord};
use crate::metadata::{MetadataImage, MetadataRecord, RecordAndVersion};
pub use crate::protocol::versions::FinalizedFeatures;
use crate::protocol::versions::FEATURES;

pub const METADATA_VERSION: &str = "metadata.version";
pub const KRAFT_VERSION: &str = "kraft.version";
pub use crate::protocol::versions::GROUP_VERSION;

/// Kafka's `FeatureUpdate.UpgradeType` codes.
const UPGRADE: i8 = 1;
const UNSAFE_DOWNGRADE: i8 = 3;

/// Who must support a new level, and which levels each supports: the
/// deciding node ("Local controller N") first, then each broker.
pub struct Supporters<'a> {
    pub local_node: i32,
    pub brokers: Vec<(i32, &'a [BrokerFeature])>,
}

/// Kafka's `VersionRange.toString`.
fn range_text(min: i16, max: i16) -> String {
    if min == max {
        min.to_string()
    } else {
        format!("{min}-{max}")
    }
}

/// Kafka's `QuorumFeatures.reasonNotSupported`: a feature not known is
/// supported at level 0 only.
fn not_supported(level: i16, what: &str, range: Option<(i16, i16)>) -> Option<String> {
    let (min, max) = range.unwrap_or((0, 0));
    if (min..=max).contains(&level) {
        None
    } else if max == 0 {
        Some(format!("{what} does not support this feature."))
    } else {
        Some(format!(
            "{what} only supports versions {}",
            range_text(min, max)
        ))
    }
}

fn local_range(name: &str) -> Option<(i16, i16)> {
    FEATURES
        .iter()
        .find(|f| f.name == name)
        .map(|f| (f.min, f.max))
}

fn invalid(name: &str, level: i16, why: &str) -> String {
    format!("Invalid update version {level} for feature {name}. {why}")
}

/// One feature's update as `FeatureControlManager.updateFeature` checks
/// it: the record to write (None: nothing changes) or Kafka's message.
fn decide_one(
    current: &FinalizedFeatures,
    name: &str,
    level: i16,
    upgrade_type: i8,
    who: &Supporters<'_>,
) -> Result<Option<(String, i16)>, String> {
    if !(UPGRADE..=UNSAFE_DOWNGRADE).contains(&upgrade_type) {
        return Err(invalid(
            name,
            level,
            "The controller does not support the given upgrade type.",
        ));
    }
    let now = current.level(name);
    if level < 0 {
        return Err(invalid(
            name,
            level,
            "A feature version cannot be less than 0.",
        ));
    }
    let local = format!("Local controller {}", who.local_node);
    if let Some(why) = not_supported(level, &local, local_range(name)) {
        return Err(invalid(name, level, &why));
    }
    for (id, features) in &who.brokers {
        let range = features
            .iter()
            .find(|f| f.name == name)
            .map(|f| (f.min_supported_version, f.max_supported_version));
        if let Some(why) = not_supported(level, &format!("Broker {id}"), range) {
            return Err(invalid(name, level, &why));
        }
    }
    if level < now && upgrade_type == UPGRADE {
        return Err(invalid(
            name,
            level,
            "Can't downgrade the version of this feature without setting the upgrade type to either safe or unsafe downgrade.",
        ));
    }
    if level > now && upgrade_type != UPGRADE {
        return Err(invalid(name, level, "Can't downgrade to a newer version."));
    }
    match name {
        METADATA_VERSION if level < now => {
            // Kafka refuses a downgrade across a level that changed the
            // metadata records; every level below 4.4's does, from kastle's
            // point of view (it does not track which ones).
            let why = if upgrade_type == UNSAFE_DOWNGRADE {
                "Unsafe metadata downgrade is not supported in this version."
            } else {
                "Refusing to perform the requested downgrade because it might delete metadata information."
            };
            Err(format!("Invalid metadata.version {level}. {why}"))
        }
        KRAFT_VERSION if level != now => Err(invalid(
            name,
            level,
            "Can't downgrade the version of this feature.",
        )),
        KRAFT_VERSION => Ok(None),
        _ if local_range(name).is_none() => {
            Err(invalid(name, level, &format!("Feature {name} not found.")))
        }
        _ => Ok(Some((name.to_string(), level))),
    }
}

/// UpdateFeatures as Kafka's controller decides it: all updates or none.
/// Ok: the levels to write (none when `validate_only`); Err: Kafka's message
/// of the first refused update.
pub fn decide(
    current: &FinalizedFeatures,
    req: &UpdateFeaturesRequest,
    version: i16,
    who: &Supporters<'_>,
) -> Result<Vec<(String, i16)>, String> {
    let mut out: Vec<(String, i16)> = Vec::new();
    for u in &req.feature_updates {
        // v0's AllowDowngrade is not read: Kafka's controller takes the
        // upgrade type, whose default (1, upgrade) a v0 request carries.
        let upgrade_type = if version >= 1 {
            u.upgrade_type
        } else {
            UPGRADE
        };
        if let Some(change) =
            decide_one(current, &u.feature, u.max_version_level, upgrade_type, who)?
        {
            // A feature named twice: the last update wins, as in Kafka's map.
            out.retain(|(n, _)| *n != change.0);
            out.push(change);
        }
    }
    if req.validate_only {
        out.clear();
    }
    Ok(out)
}

/// The response to a decided UpdateFeatures: on success v0-1 list each
/// feature as updated; on failure the top-level error names the update.
pub fn response(
    req: &UpdateFeaturesRequest,
    version: i16,
    outcome: Result<(), String>,
) -> UpdateFeaturesResponse {
    match outcome {
        Ok(()) => {
            let results = if version <= 1 {
                req.feature_updates
                    .iter()
                    .map(|u| {
                        UpdatableFeatureResult::default()
                            .with_feature(u.feature.clone())
                            .with_error_message(Some(StrBytes::from_static_str("NONE")))
                    })
                    .collect()
            } else {
                Vec::new()
            };
            UpdateFeaturesResponse::default()
                .with_error_message(None)
                .with_results(results)
        }
        Err(message) => UpdateFeaturesResponse::default()
            .with_error_code(ResponseError::InvalidUpdateVersion.code())
            .with_error_message(Some(StrBytes::from_string(format!(
                "The update failed for all features since the following feature had an error: {message}"
            )))),
    }
}

/// A refusal of the whole request (authorization, a failed write).
pub fn refused(error: ResponseError, message: Option<String>) -> UpdateFeaturesResponse {
    UpdateFeaturesResponse::default()
        .with_error_code(error.code())
        .with_error_message(message.map(StrBytes::from_string))
}

/// The finalized levels of a cluster's metadata image.
pub fn from_image(image: &MetadataImage, epoch: i64) -> FinalizedFeatures {
    FinalizedFeatures {
        recorded: image.features.clone(),
        epoch,
    }
}

/// One FeatureLevelRecord per (feature, level): a change, or the levels a
/// new cluster's first batch starts with (Kafka's bootstrap metadata).
pub fn level_records(levels: &[(String, i16)]) -> Vec<RecordAndVersion> {
    levels
        .iter()
        .map(|(name, feature_level)| RecordAndVersion {
            record: MetadataRecord::FeatureLevel(FeatureLevelRecord {
                name: name.clone(),
                feature_level: *feature_level,
            }),
            version: 0,
        })
        .collect()
}

/// UpdateFeatures on the active controller: the records and the response.
pub fn update_features(
    image: &MetadataImage,
    req: &UpdateFeaturesRequest,
    version: i16,
    local_node: i32,
) -> (Vec<RecordAndVersion>, UpdateFeaturesResponse) {
    let current = from_image(image, 0);
    let who = Supporters {
        local_node,
        brokers: image
            .brokers
            .values()
            .map(|b| (b.id, b.supported_features.as_slice()))
            .collect(),
    };
    match decide(&current, req, version, &who) {
        Ok(changes) => (level_records(&changes), response(req, version, Ok(()))),
        Err(m) => (Vec::new(), response(req, version, Err(m))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::update_features_request::FeatureUpdateKey;
    use std::collections::BTreeMap;

    const SAFE_DOWNGRADE: i8 = 2;

    fn req(updates: &[(&str, i16, i8)], validate_only: bool) -> UpdateFeaturesRequest {
        UpdateFeaturesRequest::default()
            .with_validate_only(validate_only)
            .with_feature_updates(
                updates
                    .iter()
                    .map(|(n, l, t)| {
                        FeatureUpdateKey::default()
                            .with_feature(StrBytes::from_string(n.to_string()))
                            .with_max_version_level(*l)
                            .with_upgrade_type(*t)
                    })
                    .collect(),
            )
    }

    fn standalone() -> Supporters<'static> {
        Supporters {
            local_node: 1,
            brokers: Vec::new(),
        }
    }

    fn defaults() -> FinalizedFeatures {
        FinalizedFeatures {
            recorded: BTreeMap::new(),
            epoch: 0,
        }
    }

    #[test]
    fn group_version_downgrade_needs_a_downgrade_type() {
        let cur = defaults();
        let refused = decide(
            &cur,
            &req(&[(GROUP_VERSION, 0, UPGRADE)], false),
            2,
            &standalone(),
        );
        assert_eq!(
            refused,
            Err("Invalid update version 0 for feature group.version. Can't downgrade the version of this feature without setting the upgrade type to either safe or unsafe downgrade.".into())
        );
        let ok = decide(
            &cur,
            &req(&[(GROUP_VERSION, 0, SAFE_DOWNGRADE)], false),
            2,
            &standalone(),
        );
        assert_eq!(ok, Ok(vec![(GROUP_VERSION.to_string(), 0)]));
        let validate = decide(
            &cur,
            &req(&[(GROUP_VERSION, 0, SAFE_DOWNGRADE)], true),
            2,
            &standalone(),
        );
        assert_eq!(validate, Ok(vec![]));
    }

    #[test]
    fn levels_out_of_range_and_unknown_features_are_refused() {
        let cur = defaults();
        let who = standalone();
        let one = |n: &str, l: i16, t: i8| decide(&cur, &req(&[(n, l, t)], false), 2, &who);
        assert_eq!(
            one("eligible.leader.replicas.version", 1, UPGRADE),
            Err("Invalid update version 1 for feature eligible.leader.replicas.version. Local controller 1 does not support this feature.".into())
        );
        assert_eq!(
            one("share.version", 3, UPGRADE),
            Err("Invalid update version 3 for feature share.version. Local controller 1 only supports versions 0-2".into())
        );
        assert_eq!(
            one(GROUP_VERSION, 2, UPGRADE),
            Err("Invalid update version 2 for feature group.version. Local controller 1 only supports versions 0-1".into())
        );
        assert_eq!(
            one("no.such", 0, SAFE_DOWNGRADE),
            Err("Invalid update version 0 for feature no.such. Feature no.such not found.".into())
        );
        assert_eq!(
            one(GROUP_VERSION, -1, SAFE_DOWNGRADE),
            Err("Invalid update version -1 for feature group.version. A feature version cannot be less than 0.".into())
        );
        assert_eq!(
            one(GROUP_VERSION, 1, 7),
            Err("Invalid update version 1 for feature group.version. The controller does not support the given upgrade type.".into())
        );
        assert_eq!(
            one(METADATA_VERSION, 20, SAFE_DOWNGRADE),
            Err("Invalid metadata.version 20. Refusing to perform the requested downgrade because it might delete metadata information.".into())
        );
        assert_eq!(one(KRAFT_VERSION, 0, UPGRADE), Ok(vec![]));
    }

    #[test]
    fn a_broker_that_does_not_support_the_level_refuses_it() {
        let mut cur = defaults();
        cur.recorded.insert(GROUP_VERSION.into(), 0);
        let old = [BrokerFeature {
            name: METADATA_VERSION.into(),
            min_supported_version: 7,
            max_supported_version: 27,
        }];
        let who = Supporters {
            local_node: 1,
            brokers: vec![(2, &old[..])],
        };
        assert_eq!(
            decide(&cur, &req(&[(GROUP_VERSION, 1, UPGRADE)], false), 2, &who),
            Err("Invalid update version 1 for feature group.version. Broker 2 does not support this feature.".into())
        );
        assert!(!cur.consumer_protocol_enabled());
        assert_eq!(
            cur.finalized().iter().find(|(n, _)| n == GROUP_VERSION),
            None
        );
    }
}
