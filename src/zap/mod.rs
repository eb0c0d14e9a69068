//! The ZAP wire format (RFC 27), sans-IO: requests in, replies out, ZMTP metadata; and
//! requests out ([`RequestBuilder`]) for whatever plays libzmq's part.

mod builder;
pub mod mark;
mod metadata;
mod reply;
mod request;

pub use builder::RequestBuilder;
pub use metadata::{
    check_name as check_metadata_name, decode as decode_metadata, Metadata, MetadataError,
    Property, MAX_METADATA_BYTES, RESERVED_NAMES,
};
pub use reply::{Reply, StatusCode};
pub use request::{Mechanism, Request, RequestError, ZAP_VERSION};

/// The inproc endpoint libzmq asks for every handshake that needs authentication.
pub const ZAP_ENDPOINT: &str = "inproc://zeromq.zap.01";
