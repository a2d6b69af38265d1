//! Listeners: `listeners` and `advertised.listeners` entries, binding
//! addresses, and `listener.security.protocol.map`.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use super::keys::DEFAULT_LISTENERS;
use super::{err, ConfigError};
use crate::security::SecurityProtocol;

/// A listener from `listeners` / `advertised.listeners`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub name: String,
    pub host: String,
    pub port: u16,
}

impl Listener {
    pub fn parse(s: &str) -> Result<Listener, ConfigError> {
        let bad = || ConfigError(format!("invalid listener {s:?}: expected NAME://host:port"));
        let (name, addr) = s.split_once("://").ok_or_else(bad)?;
        let (host, port) = addr.rsplit_once(':').ok_or_else(bad)?;
        let port: u16 = port.parse().map_err(|_| bad())?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        if name.is_empty() {
            return Err(bad());
        }
        Ok(Listener {
            name: name.to_ascii_uppercase(),
            host,
            port,
        })
    }

    /// Address to bind: an empty host binds every interface, as in Kafka.
    pub fn bind_addr(&self) -> Result<SocketAddr, ConfigError> {
        let host = if self.host.is_empty() {
            "0.0.0.0"
        } else {
            self.host.as_str()
        };
        let joined = if host.contains(':') {
            format!("[{host}]:{}", self.port)
        } else {
            format!("{host}:{}", self.port)
        };
        use std::net::ToSocketAddrs;
        joined
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
            .ok_or_else(|| ConfigError(format!("listener {}: cannot resolve {joined}", self.name)))
    }
}

/// The security protocols a client listener may use today. SSL is TLS
/// alone (`security::tls`); the SASL protocols are admitted with SASL
/// authentication (SASL_SSL then runs it over the same TLS transport).
fn served(p: SecurityProtocol) -> bool {
    matches!(
        p,
        SecurityProtocol::Plaintext
            | SecurityProtocol::Ssl
            | SecurityProtocol::SaslPlaintext
            | SecurityProtocol::SaslSsl
    )
}

pub fn default_hostname() -> String {
    // Kafka advertises the canonical host name; without DNS tools here the
    // kernel's node name is the closest equivalent.
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

pub fn parse_listeners(v: &str, key: &str) -> Result<Vec<Listener>, ConfigError> {
    let mut out: Vec<Listener> = Vec::new();
    for part in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let l = Listener::parse(part).map_err(|e| ConfigError(format!("{key}: {e}")))?;
        if out.iter().any(|o| o.name == l.name) {
            return err(format!("{key}: listener name {} appears twice", l.name));
        }
        out.push(l);
    }
    Ok(out)
}

pub fn parse_protocol_map(v: &str) -> Result<BTreeMap<String, String>, ConfigError> {
    let mut map = BTreeMap::new();
    for part in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, proto) = part.split_once(':').ok_or_else(|| {
            ConfigError(format!(
                "listener.security.protocol.map: invalid entry {part:?}"
            ))
        })?;
        map.insert(
            name.trim().to_ascii_uppercase(),
            proto.trim().to_ascii_uppercase(),
        );
    }
    Ok(map)
}

/// The listeners a configuration settles on.
pub struct Resolved {
    pub listeners: Vec<Listener>,
    /// One per client (non-controller) listener.
    pub advertised: Vec<Listener>,
    /// `listeners` as derived from the advertised ones, when it was not set.
    pub derived: Option<String>,
    /// Security protocol per client listener name.
    pub protocols: BTreeMap<String, SecurityProtocol>,
}

/// Settles `listeners` (`listeners_set`: given by some source rather than
/// defaulted) and `advertised.listeners` as Kafka and its images do, and
/// refuses client listeners whose protocol kastle cannot serve.
pub fn resolve(
    listeners_value: &str,
    listeners_set: bool,
    advertised_value: &str,
    controller_names: &str,
    protocol_map: &str,
) -> Result<Resolved, ConfigError> {
    let advertised_given = parse_listeners(advertised_value, "advertised.listeners")?;
    // As the apache/kafka and cp-kafka images do: without `listeners`
    // from any source, listen on every interface at the advertised ports.
    let mut derived_listeners = None;
    let listeners = if !listeners_set && !advertised_given.is_empty() {
        let derived: Vec<Listener> = advertised_given
            .iter()
            .map(|a| Listener {
                name: a.name.clone(),
                host: "0.0.0.0".to_string(),
                port: a.port,
            })
            .collect();
        derived_listeners = Some(
            derived
                .iter()
                .map(|l| format!("{}://0.0.0.0:{}", l.name, l.port))
                .collect::<Vec<_>>()
                .join(","),
        );
        derived
    } else {
        parse_listeners(listeners_value, "listeners")?
    };
    if listeners.is_empty() {
        return err("listeners must name at least one listener");
    }
    let controller_names: Vec<String> = controller_names
        .split(',')
        .map(|s| s.trim().to_ascii_uppercase())
        .filter(|s| !s.is_empty())
        .collect();
    let protocol_map = parse_protocol_map(protocol_map)?;
    // Only listeners that serve clients need a protocol kastle serves:
    // entries for unused names, or a controller listener (never bound
    // here), do not stop the broker.
    let mut protocols = BTreeMap::new();
    for l in listeners
        .iter()
        .filter(|l| !controller_names.contains(&l.name))
    {
        // Without a map entry, a listener named after a protocol uses it.
        let proto = protocol_map
            .get(&l.name)
            .map(String::as_str)
            .or(match l.name.as_str() {
                "PLAINTEXT" | "SSL" | "SASL_PLAINTEXT" | "SASL_SSL" => Some(l.name.as_str()),
                _ => None,
            });
        let Some(proto) = proto else {
            return err(format!(
                "listener {} has no entry in listener.security.protocol.map",
                l.name
            ));
        };
        let proto: SecurityProtocol = proto
            .parse()
            .map_err(|e| ConfigError(format!("listener.security.protocol.map: {e}")))?;
        if !served(proto) {
            return err(format!(
                "listener {} uses security protocol {proto}, which kastle does not support yet",
                l.name
            ));
        }
        protocols.insert(l.name.clone(), proto);
    }
    for a in &advertised_given {
        if a.host == "0.0.0.0" || a.host == "::" {
            return err(format!(
                "advertised.listeners: listener {} advertises the non-routable address {}; \
                 clients need a host name or address they can reach",
                a.name, a.host
            ));
        }
    }
    // With neither key set, advertise localhost as Kafka's shipped
    // server.properties does, so the no-config quick start works from
    // this machine; an explicit listener on every interface advertises
    // the host name, as Kafka's broker default does.
    let quick_start = listeners_value == DEFAULT_LISTENERS && advertised_given.is_empty();
    let mut advertised = Vec::new();
    for l in &listeners {
        if controller_names.contains(&l.name) {
            continue;
        }
        let adv = advertised_given
            .iter()
            .find(|a| a.name == l.name)
            .cloned()
            .map(|mut a| {
                // An empty advertised host means this machine's name,
                // as in Kafka.
                if a.host.is_empty() {
                    a.host = default_hostname();
                }
                a
            })
            .unwrap_or_else(|| {
                let host = if quick_start {
                    "localhost".to_string()
                } else if l.host.is_empty() || l.host == "0.0.0.0" || l.host == "::" {
                    default_hostname()
                } else {
                    l.host.clone()
                };
                Listener {
                    name: l.name.clone(),
                    host,
                    port: l.port,
                }
            });
        advertised.push(adv);
    }
    for a in &advertised_given {
        if !listeners.iter().any(|l| l.name == a.name) {
            return err(format!(
                "advertised.listeners names {} which is not in listeners",
                a.name
            ));
        }
    }

    Ok(Resolved {
        listeners,
        advertised,
        derived: derived_listeners,
        protocols,
    })
}
