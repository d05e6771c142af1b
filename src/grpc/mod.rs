//! The gRPC side: generated `prove.gateway.v1` types, the two service implementations, request
//! validation, conversion to and from Prove's JSON, and the one mapping from errors to statuses.
//!
//! Handlers here never speak HTTP and never build a `tonic::Status` by hand: they validate
//! ([`validate`]), convert ([`convert`]), call [`crate::prove::ProveClient`] and hand any error to
//! [`status`]. Before any handler runs, [`access`] decides who is calling and whether it may
//! call the method, and puts the caller's [`crate::callers::CallerName`] in the request's
//! extensions.

pub mod access;
pub mod convert;
pub mod sessions;
pub mod status;
pub mod unify;
pub mod validate;
pub mod verify;

/// Code generated from `proto/prove/gateway/v1/*.proto`.
pub mod pb {
    #![allow(missing_docs, clippy::all, clippy::pedantic)]
    tonic::include_proto!("prove.gateway.v1");
}

/// The encoded descriptor set of the contract (with its imports), served by reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/prove_gateway_descriptor.bin"));

/// `package.Service/Method` of every RPC in the `prove.gateway.v1` contract, read from its
/// descriptor set so a new RPC is covered without a list to keep up to date. The server hands
/// them to the metrics at start.
pub fn methods() -> Vec<String> {
    use prost::Message as _;
    let Ok(set) = prost_types::FileDescriptorSet::decode(FILE_DESCRIPTOR_SET) else {
        return Vec::new();
    };
    let mut methods = Vec::new();
    for file in set
        .file
        .iter()
        .filter(|f| f.package() == "prove.gateway.v1")
    {
        for service in &file.service {
            for method in &service.method {
                methods.push(format!(
                    "{}.{}/{}",
                    file.package(),
                    service.name(),
                    method.name()
                ));
            }
        }
    }
    methods
}

pub use unify::UnifyApi;
pub use verify::VerifyApi;

/// The caller's deadline, from the `grpc-timeout` header (gRPC over HTTP/2 spec: up to eight
/// digits and a unit, H M S m u n). Tonic enforces the deadline itself; the gateway also needs
/// it up front, to refuse a rate-limit wait or a retry that could not finish in time.
pub fn call_context<T>(request: &tonic::Request<T>) -> crate::prove::CallContext {
    let deadline = request
        .extensions()
        .get::<Deadline>()
        .map(|d| d.0)
        .or_else(|| {
            request
                .metadata()
                .get("grpc-timeout")
                .and_then(|v| v.to_str().ok())
                .and_then(parse_grpc_timeout)
                .and_then(|t| tokio::time::Instant::now().checked_add(t))
        });
    crate::prove::CallContext { deadline }
}

/// The caller's deadline as the server's edge read it when the call's headers arrived. The edge
/// puts it in the request's extensions, so a handler counts from the same instant as the edge
/// (not from when the message finished arriving) and answers before the edge's own timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline(pub tokio::time::Instant);

pub(crate) fn parse_grpc_timeout(raw: &str) -> Option<std::time::Duration> {
    use std::time::Duration;
    if raw.len() < 2 || raw.len() > 9 {
        return None;
    }
    let (digits, unit) = raw.split_at(raw.len() - 1);
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.saturating_mul(3600)),
        "M" => Duration::from_secs(n.saturating_mul(60)),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::parse_grpc_timeout;
    use std::time::Duration;

    #[test]
    fn grpc_timeouts_parse_in_every_unit() {
        assert_eq!(parse_grpc_timeout("100m"), Some(Duration::from_millis(100)));
        assert_eq!(parse_grpc_timeout("2S"), Some(Duration::from_secs(2)));
        assert_eq!(parse_grpc_timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_grpc_timeout("5x"), None);
        assert_eq!(parse_grpc_timeout("123456789m"), None);
    }

    #[test]
    fn the_methods_are_the_contracts_five_rpcs() {
        let methods = super::methods();
        assert!(methods.contains(&"prove.gateway.v1.UnifyService/Unify".to_owned()));
        assert!(methods.contains(&"prove.gateway.v1.VerifyService/VerifyStatus".to_owned()));
        assert_eq!(methods.len(), 5, "{methods:?}");
    }
}
