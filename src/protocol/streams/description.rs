//! KIP-1331's topology descriptions: the TopologyDescription structs that
//! StreamsGroupDescribe v1 answers with and that
//! StreamsGroupTopologyDescriptionUpdate (93) v0 carries, and that request
//! and its response (kastle's own codec, as the rest of `protocol::streams`).

use super::{DecodeError, Reader, Writer};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopologyDescriptionNode {
    pub name: String,
    /// 1 SOURCE, 2 PROCESSOR, 3 SINK.
    pub node_type: i8,
    pub source_topics: Vec<String>,
    pub sink_topic: Option<String>,
    pub stores: Vec<String>,
    pub successors: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopologyDescriptionSubtopology {
    pub subtopology_id: String,
    pub nodes: Vec<TopologyDescriptionNode>,
}

/// A global store: two plain (non-nullable) nested nodes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopologyDescriptionGlobalStore {
    pub source: TopologyDescriptionNode,
    pub processor: TopologyDescriptionNode,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopologyDescription {
    pub subtopologies: Vec<TopologyDescriptionSubtopology>,
    pub global_stores: Vec<TopologyDescriptionGlobalStore>,
}

fn read_node(r: &mut Reader<'_>) -> Result<TopologyDescriptionNode, DecodeError> {
    let n = TopologyDescriptionNode {
        name: r.str()?,
        node_type: r.i8()?,
        source_topics: r.arr(|r| r.str())?,
        sink_topic: r.nstr()?,
        stores: r.arr(|r| r.str())?,
        successors: r.arr(|r| r.str())?,
    };
    r.tags()?;
    Ok(n)
}
fn write_node(w: &mut Writer, n: &TopologyDescriptionNode) {
    w.str(&n.name);
    w.i8(n.node_type);
    w.arr(&n.source_topics, |w, t| w.str(t));
    w.nstr(n.sink_topic.as_deref());
    w.arr(&n.stores, |w, t| w.str(t));
    w.arr(&n.successors, |w, t| w.str(t));
    w.tags();
}

pub(super) fn read_topology_description(
    r: &mut Reader<'_>,
) -> Result<TopologyDescription, DecodeError> {
    let d = TopologyDescription {
        subtopologies: r.arr(|r| {
            let s = TopologyDescriptionSubtopology {
                subtopology_id: r.str()?,
                nodes: r.arr(read_node)?,
            };
            r.tags()?;
            Ok(s)
        })?,
        global_stores: r.arr(|r| {
            let g = TopologyDescriptionGlobalStore {
                source: read_node(r)?,
                processor: read_node(r)?,
            };
            r.tags()?;
            Ok(g)
        })?,
    };
    r.tags()?;
    Ok(d)
}
pub(super) fn write_topology_description(w: &mut Writer, d: &TopologyDescription) {
    w.arr(&d.subtopologies, |w, s| {
        w.str(&s.subtopology_id);
        w.arr(&s.nodes, write_node);
        w.tags();
    });
    w.arr(&d.global_stores, |w, g| {
        write_node(w, &g.source);
        write_node(w, &g.processor);
        w.tags();
    });
    w.tags();
}

// ---------------------------------------------------------------------
// StreamsGroupTopologyDescriptionUpdate (93)
// ---------------------------------------------------------------------

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamsGroupTopologyDescriptionUpdateRequest {
    pub group_id: String,
    pub member_id: String,
    pub topology_epoch: i32,
    /// Non-nullable: written without a presence byte.
    pub topology_description: TopologyDescription,
}

impl StreamsGroupTopologyDescriptionUpdateRequest {
    /// Decodes a request body (trailing bytes ignored, as Kafka does).
    pub fn decode(body: &[u8]) -> Result<Self, DecodeError> {
        Self::read(body).map(|(req, _)| req)
    }

    /// Decodes, returning the bytes consumed.
    pub fn read(body: &[u8]) -> Result<(Self, usize), DecodeError> {
        let mut r = Reader::new(body, "StreamsGroupTopologyDescriptionUpdateRequest");
        let req = StreamsGroupTopologyDescriptionUpdateRequest {
            group_id: r.str()?,
            member_id: r.str()?,
            topology_epoch: r.i32()?,
            topology_description: read_topology_description(&mut r)?,
        };
        r.tags()?;
        Ok((req, body.len() - r.remaining()))
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.str(&self.group_id);
        w.str(&self.member_id);
        w.i32(self.topology_epoch);
        write_topology_description(&mut w, &self.topology_description);
        w.tags();
        w.0
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamsGroupTopologyDescriptionUpdateResponse {
    pub throttle_time_ms: i32,
    pub error_code: i16,
    pub error_message: Option<String>,
}

impl StreamsGroupTopologyDescriptionUpdateResponse {
    pub fn write(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.i32(self.throttle_time_ms);
        w.i16(self.error_code);
        w.nstr(self.error_message.as_deref());
        w.tags();
        w.0
    }

    pub fn decode(body: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body, "StreamsGroupTopologyDescriptionUpdateResponse");
        let resp = StreamsGroupTopologyDescriptionUpdateResponse {
            throttle_time_ms: r.i32()?,
            error_code: r.i16()?,
            error_message: r.nstr()?,
        };
        r.tags()?;
        r.end()?;
        Ok(resp)
    }
}
