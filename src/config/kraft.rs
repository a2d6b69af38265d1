//! Kafka's KRaft settings (`KRaftConfigs`, `QuorumConfig`): the node's
//! roles, the controller quorum, the controller and inter-broker listeners,
//! the rack and the broker session, with `KafkaConfig.validateValues`'s
//! checks and messages.
//!
//! A configuration that describes no quorum beyond this node (the roles
//! unset or `broker,controller`, every voter this node, every bootstrap
//! controller one of this node's own controller ports) is a *standalone*
//! node: it runs as kastle always has, and only the checks a standalone
//! node needs apply, so `config/server.properties` and the images'
//! single-node compose files keep starting unchanged. Anything else is a
//! cluster member, held to every check Kafka makes.

use std::collections::{BTreeMap, BTreeSet};

use super::listeners::{parse_listeners, parse_protocol_map, Listener};
use super::{err, BrokerConfig, ConfigError};
use crate::security::SecurityProtocol;

/// What a node does (`process.roles`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProcessRoles {
    pub broker: bool,
    pub controller: bool,
}

impl ProcessRoles {
    pub const COMBINED: ProcessRoles = ProcessRoles {
        broker: true,
        controller: true,
    };

    /// Kafka's `parseProcessRoles`.
    pub fn parse(v: &str) -> Result<ProcessRoles, ConfigError> {
        let mut roles = ProcessRoles::default();
        let items: Vec<&str> = v
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        for role in &items {
            let slot = match *role {
                "broker" => &mut roles.broker,
                "controller" => &mut roles.controller,
                other => {
                    return err(format!(
                        "Unknown process role '{other}' (only 'broker' and 'controller' are allowed roles)"
                    ))
                }
            };
            if *slot {
                return err(format!(
                    "Duplicate role names found in `process.roles`: [{}]",
                    items.join(", ")
                ));
            }
            *slot = true;
        }
        Ok(roles)
    }
}

/// One entry of `controller.quorum.voters` (`{id}@{host}:{port}`) or of
/// `controller.quorum.bootstrap.servers` (id -1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControllerAddress {
    pub id: i32,
    pub host: String,
    pub port: u16,
}

impl ControllerAddress {
    pub fn addr(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// The KRaft part of the broker's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KRaftConfig {
    /// `process.roles`; unset reads as `broker,controller` (kastle's
    /// single node), `roles_set` tells them apart.
    pub roles: ProcessRoles,
    pub roles_set: bool,
    pub node_id: i32,
    /// `controller.quorum.voters` by id (static quorum).
    pub voters: BTreeMap<i32, ControllerAddress>,
    /// `controller.quorum.bootstrap.servers` (dynamic quorum, KIP-853).
    pub bootstrap_servers: Vec<ControllerAddress>,
    /// `controller.listener.names`, upper case, in order (a broker uses
    /// the first to reach the controllers).
    pub controller_listener_names: Vec<String>,
    /// This node's controller listeners (from `listeners`).
    pub controller_listeners: Vec<Listener>,
    /// The listener brokers talk to each other on.
    pub inter_broker_listener_name: String,
    pub inter_broker_security_protocol: SecurityProtocol,
    /// The security protocol of each of `controller.listener.names` that
    /// `listener.security.protocol.map` (or the name itself) resolves: the
    /// first is what this node connects to controllers with, and a
    /// controller serves its listeners with theirs.
    pub controller_protocols: BTreeMap<String, SecurityProtocol>,
    /// `broker.rack`.
    pub rack: Option<String>,
    pub broker_session_timeout_ms: i64,
    pub broker_heartbeat_interval_ms: i64,
    pub initial_broker_registration_timeout_ms: i64,
    pub election_timeout_ms: i64,
    pub election_backoff_max_ms: i64,
    pub fetch_timeout_ms: i64,
    pub request_timeout_ms: i64,
    pub retry_backoff_ms: i64,
    /// Every other node is reached through the quorum: see the module doc.
    pub standalone: bool,
}

/// `QuorumConfig.parseVoterConnections`.
pub fn parse_voters(v: &str) -> Result<BTreeMap<i32, ControllerAddress>, ConfigError> {
    let mut out = BTreeMap::new();
    for entry in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let shape = ". Each entry should be in the form `{id}@{host}:{port}`.";
        let parts: Vec<&str> = entry.split('@').collect();
        let [id, address] = parts[..] else {
            return err(format!(
                "Invalid configuration value for controller.quorum.voters{shape}"
            ));
        };
        let id: i32 = id.parse().map_err(|_| {
            ConfigError(format!("Failed to parse voter ID as an integer from {id}"))
        })?;
        let (host, port) = host_port(address);
        let Some(host) = host else {
            return err(format!(
                "Failed to parse host name from entry {entry} for the configuration controller.quorum.voters{shape}"
            ));
        };
        let Some(port) = port else {
            return err(format!(
                "Failed to parse host port from entry {entry} for the configuration controller.quorum.voters{shape}"
            ));
        };
        out.insert(id, ControllerAddress { id, host, port });
    }
    Ok(out)
}

/// `QuorumConfig.parseBootstrapServers`.
pub fn parse_bootstrap_servers(v: &str) -> Result<Vec<ControllerAddress>, ConfigError> {
    let mut out = Vec::new();
    for entry in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let shape = "Each entry should be in the form \"{host}:{port}\"";
        let (host, port) = host_port(entry);
        let Some(host) = host else {
            return err(format!(
                "Failed to parse host name from {entry} for the configuration controller.quorum.bootstrap.servers. {shape}"
            ));
        };
        let Some(port) = port else {
            return err(format!(
                "Failed to parse host port from {entry} for the configuration controller.quorum.bootstrap.servers. {shape}"
            ));
        };
        out.push(ControllerAddress { id: -1, host, port });
    }
    Ok(out)
}

/// Kafka's `Utils.getHost` / `getPort`: the host before the last colon
/// (brackets stripped) when it is a valid host pattern, the port after it.
fn host_port(address: &str) -> (Option<String>, Option<u16>) {
    let Some((host, port)) = address.rsplit_once(':') else {
        return (None, None);
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let valid = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '%'));
    (valid.then(|| host.to_string()), port.parse().ok())
}

fn require(ok: bool, msg: impl FnOnce() -> String) -> Result<(), ConfigError> {
    if ok {
        Ok(())
    } else {
        Err(ConfigError(msg()))
    }
}

impl KRaftConfig {
    /// A standalone combined node, before the configuration is read.
    pub(super) fn placeholder() -> KRaftConfig {
        KRaftConfig {
            roles: ProcessRoles::COMBINED,
            roles_set: false,
            node_id: 1,
            voters: BTreeMap::new(),
            bootstrap_servers: Vec::new(),
            controller_listener_names: Vec::new(),
            controller_listeners: Vec::new(),
            inter_broker_listener_name: "PLAINTEXT".to_string(),
            inter_broker_security_protocol: SecurityProtocol::Plaintext,
            controller_protocols: BTreeMap::new(),
            rack: None,
            broker_session_timeout_ms: 9000,
            broker_heartbeat_interval_ms: 2000,
            initial_broker_registration_timeout_ms: 60000,
            election_timeout_ms: 1000,
            election_backoff_max_ms: 1000,
            fetch_timeout_ms: 2000,
            request_timeout_ms: 2000,
            retry_backoff_ms: 20,
            standalone: true,
        }
    }

    /// Reads and checks the KRaft keys of a settled configuration.
    pub fn from_config(cfg: &BrokerConfig) -> Result<KRaftConfig, ConfigError> {
        let roles_value = cfg.value("process.roles").unwrap_or("").trim();
        let roles_set = !roles_value.is_empty();
        let roles = if roles_set {
            ProcessRoles::parse(roles_value)?
        } else {
            ProcessRoles::COMBINED
        };
        let node_id = cfg.node_id;
        let voters = parse_voters(cfg.string("controller.quorum.voters"))?;
        let bootstrap_servers =
            parse_bootstrap_servers(cfg.string("controller.quorum.bootstrap.servers"))?;
        let controller_listener_names: Vec<String> = cfg
            .string("controller.listener.names")
            .split(',')
            .map(|s| s.trim().to_ascii_uppercase())
            .filter(|s| !s.is_empty())
            .collect();
        let all_listeners = &cfg.listeners;
        let controller_listeners: Vec<Listener> = all_listeners
            .iter()
            .filter(|l| controller_listener_names.contains(&l.name))
            .cloned()
            .collect();
        let protocol_map = parse_protocol_map(cfg.string("listener.security.protocol.map"))?;
        let protocol_of = |name: &str| -> Option<SecurityProtocol> {
            protocol_map
                .get(name)
                .map(String::as_str)
                .or(match name {
                    "PLAINTEXT" | "SSL" | "SASL_PLAINTEXT" | "SASL_SSL" => Some(name),
                    _ => None,
                })
                .and_then(|p| p.parse().ok())
        };
        // AbstractKafkaConfig.interBrokerListenerNameAndSecurityProtocol.
        let ibl_set = cfg.originals().get("inter.broker.listener.name").cloned();
        let (inter_broker_listener_name, inter_broker_security_protocol) = match ibl_set {
            Some(name) if !name.trim().is_empty() => {
                if cfg
                    .originals()
                    .contains_key("security.inter.broker.protocol")
                {
                    return err(
                        "Only one of inter.broker.listener.name and security.inter.broker.protocol should be set.",
                    );
                }
                let name = name.trim().to_ascii_uppercase();
                let Some(p) = protocol_of(&name) else {
                    return err(format!(
                        "Listener with name {name} defined in inter.broker.listener.name not found in listener.security.protocol.map."
                    ));
                };
                (name, p)
            }
            _ => {
                let p = cfg.string("security.inter.broker.protocol").trim();
                let proto: SecurityProtocol = p
                    .parse()
                    .map_err(|e| ConfigError(format!("security.inter.broker.protocol: {e}")))?;
                (p.to_ascii_uppercase(), proto)
            }
        };
        let controller_protocols = controller_listener_names
            .iter()
            .filter_map(|n| Some((n.clone(), protocol_of(n)?)))
            .collect();
        let rack = cfg
            .value("broker.rack")
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .map(str::to_string);
        let own_controller_ports: BTreeSet<u16> =
            controller_listeners.iter().map(|l| l.port).collect();
        let standalone = roles == ProcessRoles::COMBINED
            && voters.keys().all(|id| *id == node_id)
            && bootstrap_servers
                .iter()
                .all(|b| own_controller_ports.contains(&b.port));
        let k = KRaftConfig {
            roles,
            roles_set,
            node_id,
            voters,
            bootstrap_servers,
            controller_listener_names,
            controller_listeners,
            inter_broker_listener_name,
            inter_broker_security_protocol,
            controller_protocols,
            rack,
            broker_session_timeout_ms: cfg.int("broker.session.timeout.ms"),
            broker_heartbeat_interval_ms: cfg.int("broker.heartbeat.interval.ms"),
            initial_broker_registration_timeout_ms: cfg
                .int("initial.broker.registration.timeout.ms"),
            election_timeout_ms: cfg.int("controller.quorum.election.timeout.ms"),
            election_backoff_max_ms: cfg.int("controller.quorum.election.backoff.max.ms"),
            fetch_timeout_ms: cfg.int("controller.quorum.fetch.timeout.ms"),
            request_timeout_ms: cfg.int("controller.quorum.request.timeout.ms"),
            retry_backoff_ms: cfg.int("controller.quorum.retry.backoff.ms"),
            standalone,
        };
        if !k.standalone {
            k.validate_cluster(cfg, &protocol_map)?;
        }
        Ok(k)
    }

    /// Kafka's `KafkaConfig.validateValues`, the KRaft part.
    fn validate_cluster(
        &self,
        cfg: &BrokerConfig,
        protocol_map: &BTreeMap<String, String>,
    ) -> Result<(), ConfigError> {
        let voter_ids: BTreeSet<i32> = self.voters.keys().copied().collect();
        let node_id = self.node_id;
        let voter_set = || {
            format!(
                "controller.quorum.voters=Set({})",
                voter_ids
                    .iter()
                    .map(i32::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        if !cfg.originals().contains_key("node.id") {
            return err("Missing required configuration \"node.id\" which has no default value.");
        }
        require(
            !voter_ids.is_empty() || !self.bootstrap_servers.is_empty(),
            || {
                "If using process.roles, either controller.quorum.bootstrap.servers must contain the set of \
             bootstrap controllers or controller.quorum.voters must contain a parseable set of controllers."
                .to_string()
            },
        )?;
        let listener_names: BTreeSet<&str> =
            cfg.listeners.iter().map(|l| l.name.as_str()).collect();
        if self.roles.controller {
            require(voter_ids.is_empty() || voter_ids.contains(&node_id), || {
                format!(
                    "If process.roles contains the 'controller' role, the node id {node_id} must be included in the set of voters {}",
                    voter_set()
                )
            })?;
            require(!self.controller_listeners.is_empty(), || {
                "controller.listener.names must contain at least one value appearing in the 'listeners' configuration when running the KRaft controller role".to_string()
            })?;
            require(
                self.controller_listener_names
                    .iter()
                    .all(|n| listener_names.contains(n.as_str())),
                || {
                    "controller.listener.names must only contain values appearing in the 'listeners' configuration when running the KRaft controller role".to_string()
                },
            )?;
        }
        if self.roles
            == (ProcessRoles {
                broker: false,
                controller: true,
            })
        {
            require(
                self.controller_listeners.len() == cfg.listeners.len(),
                || {
                    "The listeners config must only contain KRaft controller listeners from controller.listener.names when process.roles=controller".to_string()
                },
            )?;
            if cfg.originals().contains_key("inter.broker.listener.name") {
                require(
                    !self
                        .controller_listener_names
                        .contains(&self.inter_broker_listener_name),
                    || {
                        "controller.listener.names must not contain an explicitly set inter.broker.listener.name configuration value when process.roles=controller'".to_string()
                    },
                )?;
            }
        }
        if self.roles
            == (ProcessRoles {
                broker: true,
                controller: false,
            })
        {
            require(!voter_ids.contains(&node_id), || {
                format!(
                    "If process.roles contains just the 'broker' role, the node id {node_id} must not be included in the set of voters {}",
                    voter_set()
                )
            })?;
            require(!self.controller_listener_names.is_empty(), || {
                "controller.listener.names must contain at least one value when running KRaft with just the broker role".to_string()
            })?;
            require(self.controller_listeners.is_empty(), || {
                "controller.listener.names must not contain a value appearing in the 'listeners' configuration when running KRaft with just the broker role".to_string()
            })?;
            for name in &self.controller_listener_names {
                // Kafka maps controller listeners to PLAINTEXT when the
                // map is not set (`effectiveListenerSecurityProtocolMap`).
                let mapped = !cfg
                    .originals()
                    .contains_key("listener.security.protocol.map")
                    || protocol_map.contains_key(name);
                require(mapped, || {
                    format!(
                    "Controller listener with name {name} defined in controller.listener.names not found in listener.security.protocol.map  (an explicit security mapping for each controller listener is required if listener.security.protocol.map is non-empty, or if there are security protocols other than PLAINTEXT in use)"
                )
                })?;
            }
        }
        if self.roles.broker {
            // Kafka's `effectiveAdvertisedBrokerListeners`: the advertised
            // list when set (no per-listener fallback), else `listeners`.
            let advertised_given =
                parse_listeners(cfg.string("advertised.listeners"), "advertised.listeners")?;
            let source = if advertised_given.is_empty() {
                &cfg.listeners
            } else {
                &advertised_given
            };
            let advertised: Vec<&str> = source
                .iter()
                .map(|l| l.name.as_str())
                .filter(|n| !self.controller_listener_names.iter().any(|c| c == n))
                .collect();
            require(!advertised.is_empty(), || {
                "There must be at least one broker advertised listener. Perhaps all listeners appear in controller.listener.names?".to_string()
            })?;
            require(
                advertised.contains(&self.inter_broker_listener_name.as_str()),
                || {
                    format!(
                    "inter.broker.listener.name must be a listener name defined in advertised.listeners. The valid options based on currently configured listeners are {}",
                    advertised.join(",")
                )
                },
            )?;
        }
        // Advertised addresses on 0.0.0.0 are refused for every listener
        // when the listeners are resolved (`listeners::resolve`).
        Ok(())
    }

    /// The id of every voter, this node's own included when it is one.
    pub fn voter_ids(&self) -> BTreeSet<i32> {
        self.voters.keys().copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(entries: &[(&str, &str)]) -> Result<KRaftConfig, String> {
        BrokerConfig::from_entries(
            entries
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
        .map(|(c, _)| c.kraft)
        .map_err(|e| e.0)
    }

    /// Three controllers on 19093..19095.
    const VOTERS: &str = "1@c1:19093,2@c2:19094,3@c3:19095";

    #[test]
    fn single_node_configurations_stay_standalone() {
        // No roles at all, kastle's shipped server.properties (combined,
        // no quorum keys), the apache/kafka image's single-node defaults.
        for entries in [
            vec![],
            vec![
                ("node.id", "1"),
                ("process.roles", "broker,controller"),
                ("listeners", "PLAINTEXT://:9092"),
            ],
            vec![
                ("node.id", "1"),
                ("process.roles", "broker,controller"),
                ("listeners", "PLAINTEXT://:9092,CONTROLLER://:9093"),
                ("controller.listener.names", "CONTROLLER"),
                ("controller.quorum.bootstrap.servers", "localhost:9093"),
            ],
            vec![
                ("node.id", "1"),
                ("process.roles", "controller,broker"),
                ("listeners", "PLAINTEXT://:9092,CONTROLLER://:9093"),
                ("controller.listener.names", "CONTROLLER"),
                ("controller.quorum.voters", "1@kafka:9093"),
            ],
        ] {
            let k = load(&entries).unwrap();
            assert!(k.standalone, "{entries:?}");
            assert_eq!(k.roles, ProcessRoles::COMBINED);
        }
    }

    #[test]
    fn roles_are_parsed_as_kafka_does() {
        assert_eq!(
            ProcessRoles::parse("controller").unwrap(),
            ProcessRoles {
                broker: false,
                controller: true
            }
        );
        assert_eq!(
            ProcessRoles::parse("broker, broker").unwrap_err().0,
            "Duplicate role names found in `process.roles`: [broker, broker]"
        );
        // The key table refuses unknown roles before this parser sees them.
        assert!(load(&[("process.roles", "observer")]).is_err());
    }

    #[test]
    fn a_cluster_of_controllers_and_brokers_is_read_whole() {
        let c = load(&[
            ("node.id", "2"),
            ("process.roles", "controller"),
            ("listeners", "CONTROLLER://127.0.0.1:19094"),
            ("controller.listener.names", "CONTROLLER"),
            ("controller.quorum.voters", VOTERS),
            ("controller.quorum.election.timeout.ms", "500"),
        ])
        .unwrap();
        assert!(!c.standalone);
        assert_eq!(c.voter_ids(), BTreeSet::from([1, 2, 3]));
        assert_eq!(c.voters[&3].addr(), "c3:19095");
        assert_eq!(c.controller_listeners[0].port, 19094);
        assert_eq!(c.election_timeout_ms, 500);
        let b = load(&[
            ("node.id", "4"),
            ("process.roles", "broker"),
            ("listeners", "INTERNAL://:9092,EXTERNAL://:9094"),
            (
                "advertised.listeners",
                "INTERNAL://b4:9092,EXTERNAL://localhost:9094",
            ),
            (
                "listener.security.protocol.map",
                "INTERNAL:PLAINTEXT,EXTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT",
            ),
            ("inter.broker.listener.name", "INTERNAL"),
            ("controller.listener.names", "CONTROLLER"),
            ("controller.quorum.bootstrap.servers", "c1:19093,c2:19094"),
            ("broker.rack", "rack-a"),
            ("broker.session.timeout.ms", "4000"),
        ])
        .unwrap();
        assert!(!b.standalone);
        assert_eq!(b.bootstrap_servers.len(), 2);
        assert_eq!(b.inter_broker_listener_name, "INTERNAL");
        assert_eq!(b.rack.as_deref(), Some("rack-a"));
        assert_eq!(b.broker_session_timeout_ms, 4000);
        assert_eq!(b.broker_heartbeat_interval_ms, 2000);
    }

    #[test]
    fn kafka_refuses_these_cluster_configurations_with_its_messages() {
        let controller = |extra: &[(&'static str, &'static str)]| {
            let mut e = vec![
                ("node.id", "2"),
                ("process.roles", "controller"),
                ("listeners", "CONTROLLER://127.0.0.1:19094"),
                ("controller.listener.names", "CONTROLLER"),
                ("controller.quorum.voters", VOTERS),
            ];
            for (k, v) in extra {
                e.retain(|(ek, _)| ek != k);
                e.push((k, v));
            }
            load(&e).unwrap_err()
        };
        assert_eq!(
            controller(&[("node.id", "7")]),
            "If process.roles contains the 'controller' role, the node id 7 must be included in the set of voters controller.quorum.voters=Set(1, 2, 3)"
        );
        assert_eq!(
            controller(&[("listeners", "CONTROLLER://:19094,PLAINTEXT://:9092")]),
            "The listeners config must only contain KRaft controller listeners from controller.listener.names when process.roles=controller"
        );
        assert_eq!(
            controller(&[
                ("controller.listener.names", "CTL"),
                ("listener.security.protocol.map", "CONTROLLER:PLAINTEXT"),
            ]),
            "controller.listener.names must contain at least one value appearing in the 'listeners' configuration when running the KRaft controller role"
        );
        assert_eq!(
            load(&[
                ("node.id", "2"),
                ("process.roles", "controller"),
                ("listeners", "CONTROLLER://127.0.0.1:19094"),
                ("controller.listener.names", "CONTROLLER"),
            ])
            .unwrap_err(),
            "If using process.roles, either controller.quorum.bootstrap.servers must contain the set of bootstrap controllers or controller.quorum.voters must contain a parseable set of controllers."
        );
        assert_eq!(
            controller(&[("controller.quorum.voters", "1@c1:19093,x@c2:1")]),
            "Failed to parse voter ID as an integer from x"
        );
        assert_eq!(
            controller(&[("controller.quorum.voters", "1@c1")]),
            "Failed to parse host name from entry 1@c1 for the configuration controller.quorum.voters. Each entry should be in the form `{id}@{host}:{port}`."
        );
        assert_eq!(
            controller(&[("controller.quorum.voters", "1@c1:port")]),
            "Failed to parse host port from entry 1@c1:port for the configuration controller.quorum.voters. Each entry should be in the form `{id}@{host}:{port}`."
        );
        assert_eq!(
            controller(&[("controller.quorum.voters", "1-c1:1")]),
            "Invalid configuration value for controller.quorum.voters. Each entry should be in the form `{id}@{host}:{port}`."
        );
        let broker = |extra: &[(&'static str, &'static str)]| {
            let mut e = vec![
                ("node.id", "4"),
                ("process.roles", "broker"),
                ("listeners", "PLAINTEXT://:9092"),
                ("controller.listener.names", "CONTROLLER"),
                ("controller.quorum.voters", VOTERS),
            ];
            for (k, v) in extra {
                e.retain(|(ek, _)| ek != k);
                e.push((k, v));
            }
            load(&e)
        };
        assert!(broker(&[]).unwrap().roles.broker);
        assert_eq!(
            broker(&[("node.id", "3")]).unwrap_err(),
            "If process.roles contains just the 'broker' role, the node id 3 must not be included in the set of voters controller.quorum.voters=Set(1, 2, 3)"
        );
        assert_eq!(
            broker(&[("controller.listener.names", "")]).unwrap_err(),
            "controller.listener.names must contain at least one value when running KRaft with just the broker role"
        );
        assert_eq!(
            broker(&[("listeners", "PLAINTEXT://:9092,CONTROLLER://:9093")]).unwrap_err(),
            "controller.listener.names must not contain a value appearing in the 'listeners' configuration when running KRaft with just the broker role"
        );
        assert_eq!(
            broker(&[("listener.security.protocol.map", "PLAINTEXT:PLAINTEXT")]).unwrap_err(),
            "Controller listener with name CONTROLLER defined in controller.listener.names not found in listener.security.protocol.map  (an explicit security mapping for each controller listener is required if listener.security.protocol.map is non-empty, or if there are security protocols other than PLAINTEXT in use)"
        );
        assert_eq!(
            broker(&[("inter.broker.listener.name", "PLAINTEXT"), ("security.inter.broker.protocol", "PLAINTEXT")]).unwrap_err(),
            "Only one of inter.broker.listener.name and security.inter.broker.protocol should be set."
        );
        assert_eq!(
            broker(&[("inter.broker.listener.name", "INTERNAL")]).unwrap_err(),
            "Listener with name INTERNAL defined in inter.broker.listener.name not found in listener.security.protocol.map."
        );
        assert_eq!(
            broker(&[
                ("listeners", "PLAINTEXT://:9092,INTERNAL://:9093"),
                ("advertised.listeners", "PLAINTEXT://b4:9092"),
                ("listener.security.protocol.map", "PLAINTEXT:PLAINTEXT,INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT"),
                ("inter.broker.listener.name", "INTERNAL"),
            ])
            .unwrap_err(),
            "inter.broker.listener.name must be a listener name defined in advertised.listeners. The valid options based on currently configured listeners are PLAINTEXT"
        );
        assert_eq!(
            load(&[
                ("process.roles", "broker"),
                ("controller.listener.names", "CONTROLLER"),
                ("controller.quorum.voters", VOTERS),
            ])
            .unwrap_err(),
            "Missing required configuration \"node.id\" which has no default value."
        );
    }
}
