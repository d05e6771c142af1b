//! The one mapping from errors to gRPC statuses (the table in `proto/.../errors.proto`).
//!
//! Every status the gateway returns for a failed call is built here, with exactly one
//! `google.rpc.ErrorInfo` (AIP-193), `RetryInfo` where waiting helps, Prove's own error as a
//! `prove.gateway.v1.ProveError` when Prove answered, `BadRequest` for invalid fields, and
//! `RequestInfo` carrying the correlation ID when there is one.

use std::collections::HashMap;
use std::time::Duration;

use prost::Message;
use tonic::{Code, Status};
use tonic_types::pb;

use super::pb::{ErrorReason, ProveErrorCode};
use crate::callers::Refusal;
use crate::callers::idempotency::Refusal as KeyRefusal;
use crate::prove::ProveError;
use crate::resilience;
use crate::store::StoreError;

/// `ErrorInfo.domain` of errors the gateway produces itself.
pub const GATEWAY_DOMAIN: &str = "prove-gateway";
/// `ErrorInfo.domain` of errors Prove produced.
pub const PROVE_DOMAIN: &str = "proveapis.com";

/// Retry hint for outages when Prove gave none.
const DEFAULT_RETRY: Duration = Duration::from_secs(1);

/// One invalid field: its proto name and the rule it broke (never its value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The field, as named in the proto (`phone_number`).
    pub field: &'static str,
    /// The rule, for example "required" or "at most 128 characters".
    pub rule: String,
}

/// INVALID_ARGUMENT naming every invalid field at once.
pub fn invalid_argument(violations: &[Violation]) -> Status {
    let message = format!(
        "invalid request: {}",
        violations
            .iter()
            .map(|v| format!("{}: {}", v.field, v.rule))
            .collect::<Vec<_>>()
            .join("; ")
    );
    let bad_request = pb::BadRequest {
        field_violations: violations
            .iter()
            .map(|v| pb::bad_request::FieldViolation {
                field: v.field.to_owned(),
                description: v.rule.clone(),
                ..Default::default()
            })
            .collect(),
    };
    let details = vec![
        error_info(ErrorReason::InvalidField, GATEWAY_DOMAIN, HashMap::new()),
        any("google.rpc.BadRequest", &bad_request),
    ];
    build(Code::InvalidArgument, message, details)
}

/// INTERNAL for a request message that could not be read (`detail` says how), before any
/// handler ran. gRPC answers undecodable messages with INTERNAL; this adds the ErrorInfo.
pub fn malformed_message(detail: impl Into<String>) -> Status {
    gateway_error(Code::Internal, ErrorReason::MalformedMessage, detail.into())
}

/// RESOURCE_EXHAUSTED for a request message over the size limit (`detail` gives the sizes).
/// gRPC's own answer is OUT_OF_RANGE, against its convention; this is the conventional code.
pub fn message_too_large(detail: impl Into<String>) -> Status {
    gateway_error(
        Code::ResourceExhausted,
        ErrorReason::MessageTooLarge,
        detail.into(),
    )
}

/// DEADLINE_EXCEEDED when the caller's deadline passed before the call could be answered.
pub fn caller_deadline_exceeded() -> Status {
    gateway_error(
        Code::DeadlineExceeded,
        ErrorReason::CallerDeadlineExceeded,
        "the caller's deadline passed before the call finished".to_owned(),
    )
}

/// UNAVAILABLE, with RetryInfo, when the session store could not answer. The store's own
/// words stay in the logs: the caller learns what failed, not how the gateway is built.
pub fn store_unavailable(_error: &StoreError) -> Status {
    let details = vec![
        error_info(
            ErrorReason::SessionStoreUnavailable,
            GATEWAY_DOMAIN,
            HashMap::new(),
        ),
        retry_info(DEFAULT_RETRY),
    ];
    build(
        Code::Unavailable,
        "the gateway's session store is unavailable; retry later".to_owned(),
        details,
    )
}

/// FAILED_PRECONDITION when a caller's `client_request_id` was used before with other fields.
pub fn idempotency_key_reused() -> Status {
    gateway_error(
        Code::FailedPrecondition,
        ErrorReason::IdempotencyKeyReused,
        "client_request_id was used before, within the session window, for a request with other \
         fields"
            .to_owned(),
    )
}

/// What Prove answers for an unknown or expired correlation ID (403, code 8008, with Prove's
/// own `message`), built without asking Prove: for a session of another caller, or one without
/// a record while unknown sessions are refused. Built by [`from_prove`] from the very error
/// Prove's answer becomes, so no detail, field or word can tell the two apart.
pub fn unknown_session(correlation_id: &str, prove_message: &str) -> Status {
    let error = ProveError::Api {
        status: 403,
        code: Some(8008),
        message: prove_message.to_owned(),
        retry_after: None,
    };
    from_prove(&error, Some(correlation_id))
}

/// The status for a start whose idempotency key kept it from an answer of its own.
pub fn from_idempotency(refusal: &KeyRefusal<ProveError>) -> Status {
    match refusal {
        KeyRefusal::KeyReused => idempotency_key_reused(),
        KeyRefusal::Store(error) => store_unavailable(error),
        KeyRefusal::Failed(error) => from_prove(error, None),
        KeyRefusal::DeadlineExceeded => caller_deadline_exceeded(),
    }
}

/// The status of a call the access check refused: UNAUTHENTICATED (`CALLER_UNAUTHENTICATED`)
/// without a valid credential, PERMISSION_DENIED (`CALLER_NOT_ALLOWED`) for a method the
/// caller's allow list does not grant. The message says what was wrong, never the credential.
pub fn refused(refusal: &Refusal) -> Status {
    match refusal {
        Refusal::Unauthenticated(why) => gateway_error(
            Code::Unauthenticated,
            ErrorReason::CallerUnauthenticated,
            format!("no valid credential: {}", why.why()),
        ),
        Refusal::NotAllowed { caller, method } => {
            let metadata = HashMap::from([
                ("caller".to_owned(), caller.as_str().to_owned()),
                ("method".to_owned(), method.clone()),
            ]);
            let details = vec![error_info(
                ErrorReason::CallerNotAllowed,
                GATEWAY_DOMAIN,
                metadata,
            )];
            build(
                Code::PermissionDenied,
                format!("caller `{}` may not call {method}", caller.as_str()),
                details,
            )
        }
    }
}

/// A status of the gateway's own with nothing but its ErrorInfo.
fn gateway_error(code: Code, reason: ErrorReason, message: String) -> Status {
    let details = vec![error_info(reason, GATEWAY_DOMAIN, HashMap::new())];
    build(code, message, details)
}

/// How one kind of error reaches the caller.
struct Mapping {
    code: Code,
    reason: ErrorReason,
    domain: &'static str,
    retry: Option<Duration>,
}

impl Mapping {
    fn new(code: Code, reason: ErrorReason, domain: &'static str) -> Self {
        Self {
            code,
            reason,
            domain,
            retry: None,
        }
    }

    fn retry_after(mut self, delay: Duration) -> Self {
        self.retry = Some(delay);
        self
    }
}

/// The mapping of a documented Prove code; `None` for codes the contract does not list.
fn by_prove_code(code: i64, retry_after: Option<Duration>) -> Option<Mapping> {
    use ErrorReason as R;
    let m = |code, reason| Some(Mapping::new(code, reason, PROVE_DOMAIN));
    match code {
        8000 => m(Code::Unavailable, R::ProveInternalError)
            .map(|m| m.retry_after(retry_after.unwrap_or(DEFAULT_RETRY))),
        8001 => m(Code::InvalidArgument, R::MalformedRequest),
        // Our own credentials were refused: the caller cannot fix that, an operator must.
        8002 => m(Code::Internal, R::UpstreamUnauthorized),
        8003 => m(Code::FailedPrecondition, R::StepOutOfOrder),
        8007 => m(Code::NotFound, R::SandboxUserNotFound),
        8008 => m(Code::FailedPrecondition, R::InvalidCorrelationId),
        8009 => m(Code::PermissionDenied, R::SandboxAccessDenied),
        8010 => m(Code::PermissionDenied, R::CountryNotAuthorized),
        8011 => m(Code::NotFound, R::IdentityNotFound),
        8018 => m(Code::ResourceExhausted, R::RateLimited)
            .map(|m| m.retry_after(retry_after.unwrap_or(DEFAULT_RETRY))),
        8019 => m(Code::FailedPrecondition, R::DeviceRevoked),
        _ => None,
    }
}

/// The mapping of an answer whose code is absent or unlisted, by HTTP status.
fn by_http_status(status: u16, retry_after: Option<Duration>) -> Mapping {
    use ErrorReason as R;
    match status {
        429 => Mapping::new(Code::ResourceExhausted, R::RateLimited, PROVE_DOMAIN)
            .retry_after(retry_after.unwrap_or(DEFAULT_RETRY)),
        500..=599 => Mapping::new(Code::Unavailable, R::ProveInternalError, PROVE_DOMAIN)
            .retry_after(retry_after.unwrap_or(DEFAULT_RETRY)),
        400 => Mapping::new(Code::InvalidArgument, R::ProveError, PROVE_DOMAIN),
        401 => Mapping::new(Code::Internal, R::UpstreamUnauthorized, PROVE_DOMAIN),
        403 => Mapping::new(Code::PermissionDenied, R::ProveError, PROVE_DOMAIN),
        404 => Mapping::new(Code::NotFound, R::ProveError, PROVE_DOMAIN),
        _ => Mapping::new(Code::Unknown, R::ProveError, PROVE_DOMAIN),
    }
}

fn mapping(error: &ProveError) -> Mapping {
    use ErrorReason as R;
    match error {
        ProveError::Api {
            status,
            code,
            retry_after,
            ..
        } => code
            .and_then(|c| by_prove_code(c, *retry_after))
            .unwrap_or_else(|| by_http_status(*status, *retry_after)),
        ProveError::Transport(error) => transport_mapping(error),
        ProveError::BadResponse(_) => {
            Mapping::new(Code::Internal, R::UpstreamBadResponse, GATEWAY_DOMAIN)
        }
    }
}

/// The mapping of a failure on the outbound path: the gateway's own limits and the transport.
fn transport_mapping(error: &resilience::Error) -> Mapping {
    use ErrorReason as R;
    use resilience::Error as E;
    match error {
        E::RateLimited { retry_after, .. } => Mapping::new(
            Code::ResourceExhausted,
            R::GatewayRateLimited,
            GATEWAY_DOMAIN,
        )
        .retry_after(*retry_after),
        E::Overloaded { retry_after } => Mapping::new(
            Code::ResourceExhausted,
            R::GatewayOverloaded,
            GATEWAY_DOMAIN,
        )
        .retry_after(*retry_after),
        E::Timeout { .. } => {
            Mapping::new(Code::DeadlineExceeded, R::UpstreamTimeout, GATEWAY_DOMAIN)
        }
        E::Unreachable(_) => {
            Mapping::new(Code::Unavailable, R::UpstreamUnavailable, GATEWAY_DOMAIN)
                .retry_after(DEFAULT_RETRY)
        }
        // The request may have been acted on: no retry hint, the caller should check first.
        E::ConnectionLost(_) => {
            Mapping::new(Code::Unavailable, R::UpstreamUnavailable, GATEWAY_DOMAIN)
        }
        // A bug or a bad setting of the gateway: no retry hint, waiting does not fix it.
        E::Request(_) => Mapping::new(Code::Internal, R::GatewayInternalError, GATEWAY_DOMAIN),
    }
}

/// The status for a failed Prove call. `correlation_id` is the session, when known.
pub fn from_prove(error: &ProveError, correlation_id: Option<&str>) -> Status {
    let mapping = mapping(error);
    let mut metadata = HashMap::new();
    if let Some(code) = error.prove_code() {
        metadata.insert("proveCode".to_owned(), code.to_string());
    }
    if let Some(status) = error.http_status() {
        metadata.insert("httpStatus".to_owned(), status.to_string());
    }
    if let Some(id) = correlation_id.filter(|id| !id.is_empty()) {
        metadata.insert("correlationId".to_owned(), id.to_owned());
    }
    let mut details = vec![error_info(mapping.reason, mapping.domain, metadata)];
    if let Some(delay) = mapping.retry {
        details.push(retry_info(delay));
    }
    if let ProveError::Api {
        status,
        code,
        message,
        ..
    } = error
    {
        let prove = super::pb::ProveError {
            code: code
                .and_then(|c| i32::try_from(c).ok())
                .and_then(|c| ProveErrorCode::try_from(c).ok())
                .unwrap_or(ProveErrorCode::Unspecified) as i32,
            raw_code: code.unwrap_or(0),
            message: message.clone(),
            http_status: i32::from(*status),
            correlation_id: correlation_id.unwrap_or_default().to_owned(),
        };
        details.push(any("prove.gateway.v1.ProveError", &prove));
    }
    if let Some(id) = correlation_id.filter(|id| !id.is_empty()) {
        let info = pb::RequestInfo {
            request_id: id.to_owned(),
            serving_data: String::new(),
        };
        details.push(any("google.rpc.RequestInfo", &info));
    }
    build(mapping.code, error.to_string(), details)
}

/// The `ErrorInfo.reason` of `reason`: its proto name without the `ERROR_REASON_` prefix,
/// derived from the generated enum so the contract and the code cannot drift apart.
pub fn reason_str(reason: ErrorReason) -> &'static str {
    let name = reason.as_str_name();
    name.strip_prefix("ERROR_REASON_").unwrap_or(name)
}

fn error_info(
    reason: ErrorReason,
    domain: &str,
    metadata: HashMap<String, String>,
) -> prost_types::Any {
    let info = pb::ErrorInfo {
        reason: reason_str(reason).to_owned(),
        domain: domain.to_owned(),
        metadata,
    };
    any("google.rpc.ErrorInfo", &info)
}

fn retry_info(delay: Duration) -> prost_types::Any {
    let retry = pb::RetryInfo {
        retry_delay: Some(prost_types::Duration {
            seconds: i64::try_from(delay.as_secs()).unwrap_or(i64::MAX),
            nanos: i32::try_from(delay.subsec_nanos()).unwrap_or(0),
        }),
    };
    any("google.rpc.RetryInfo", &retry)
}

fn any(type_name: &str, message: &impl Message) -> prost_types::Any {
    prost_types::Any {
        type_url: format!("type.googleapis.com/{type_name}"),
        value: message.encode_to_vec(),
    }
}

fn build(code: Code, message: String, details: Vec<prost_types::Any>) -> Status {
    let status = pb::Status {
        code: code as i32,
        message: message.clone(),
        details,
    };
    Status::with_details(code, message, status.encode_to_vec().into())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use tonic_types::StatusExt;

    fn api(status: u16, code: Option<i64>) -> ProveError {
        ProveError::Api {
            status,
            code,
            message: "m".into(),
            retry_after: None,
        }
    }

    fn reason_of(status: &Status) -> (String, String) {
        let info = status.get_details_error_info().unwrap();
        (info.reason, info.domain)
    }

    #[test]
    fn every_documented_prove_code_maps_as_the_contract_says() {
        let table = [
            (500, 8000, Code::Unavailable, "PROVE_INTERNAL_ERROR"),
            (400, 8001, Code::InvalidArgument, "MALFORMED_REQUEST"),
            (401, 8002, Code::Internal, "UPSTREAM_UNAUTHORIZED"),
            (403, 8003, Code::FailedPrecondition, "STEP_OUT_OF_ORDER"),
            (400, 8007, Code::NotFound, "SANDBOX_USER_NOT_FOUND"),
            (
                403,
                8008,
                Code::FailedPrecondition,
                "INVALID_CORRELATION_ID",
            ),
            (403, 8009, Code::PermissionDenied, "SANDBOX_ACCESS_DENIED"),
            (403, 8010, Code::PermissionDenied, "COUNTRY_NOT_AUTHORIZED"),
            (404, 8011, Code::NotFound, "IDENTITY_NOT_FOUND"),
            (429, 8018, Code::ResourceExhausted, "RATE_LIMITED"),
            (403, 8019, Code::FailedPrecondition, "DEVICE_REVOKED"),
        ];
        for (http, code, grpc, reason) in table {
            let status = from_prove(&api(http, Some(code)), Some("c0ffee"));
            assert_eq!(status.code(), grpc, "{code}");
            let info = status.get_details_error_info().unwrap();
            assert_eq!(info.reason, reason, "{code}");
            assert_eq!(info.domain, PROVE_DOMAIN);
            assert_eq!(info.metadata["proveCode"], code.to_string());
            assert_eq!(info.metadata["httpStatus"], http.to_string());
            assert_eq!(info.metadata["correlationId"], "c0ffee");
            assert_eq!(
                status.get_details_request_info().unwrap().request_id,
                "c0ffee"
            );
        }
    }

    #[test]
    fn rate_limits_carry_retry_info_from_retry_after() {
        let error = ProveError::Api {
            status: 429,
            code: Some(8018),
            message: "slow down".into(),
            retry_after: Some(Duration::from_secs(2)),
        };
        let status = from_prove(&error, None);
        let retry = status.get_details_retry_info().unwrap();
        assert_eq!(retry.retry_delay, Some(Duration::from_secs(2)));
    }

    #[test]
    fn answers_without_a_code_map_by_their_http_status() {
        // (HTTP status, gRPC code, reason, carries RetryInfo)
        let table = [
            (429, Code::ResourceExhausted, "RATE_LIMITED", true),
            (500, Code::Unavailable, "PROVE_INTERNAL_ERROR", true),
            (503, Code::Unavailable, "PROVE_INTERNAL_ERROR", true),
            (599, Code::Unavailable, "PROVE_INTERNAL_ERROR", true),
            (400, Code::InvalidArgument, "PROVE_ERROR", false),
            (401, Code::Internal, "UPSTREAM_UNAUTHORIZED", false),
            (403, Code::PermissionDenied, "PROVE_ERROR", false),
            (404, Code::NotFound, "PROVE_ERROR", false),
            (418, Code::Unknown, "PROVE_ERROR", false),
        ];
        for (http, code, reason, retry) in table {
            let status = from_prove(&api(http, None), None);
            assert_eq!(status.code(), code, "HTTP {http}");
            assert_eq!(
                reason_of(&status),
                (reason.to_owned(), PROVE_DOMAIN.to_owned()),
                "HTTP {http}"
            );
            let hint = status.get_details_retry_info().map(|r| r.retry_delay);
            // Without Prove's Retry-After the hint is the documented default of one second.
            let expected = retry.then_some(Some(Duration::from_secs(1)));
            assert_eq!(hint, expected, "HTTP {http}");
        }
    }

    #[test]
    fn a_documented_code_wins_over_the_http_status_it_came_with() {
        // Prove's code decides, whatever status carried it (the statuses here would map
        // differently on their own).
        let table = [
            (400, 8000, Code::Unavailable, "PROVE_INTERNAL_ERROR", true),
            (403, 8002, Code::Internal, "UPSTREAM_UNAUTHORIZED", false),
            (400, 8018, Code::ResourceExhausted, "RATE_LIMITED", true),
        ];
        for (http, prove_code, code, reason, retry) in table {
            let status = from_prove(&api(http, Some(prove_code)), None);
            assert_eq!(status.code(), code, "{prove_code}");
            assert_eq!(reason_of(&status).0, reason, "{prove_code}");
            assert_eq!(
                status.get_details_retry_info().is_some(),
                retry,
                "{prove_code}"
            );
        }
    }

    #[test]
    fn an_unknown_code_passes_through_and_maps_by_http_status() {
        let status = from_prove(&api(403, Some(8099)), None);
        assert_eq!(status.code(), Code::PermissionDenied);
        assert_eq!(reason_of(&status).0, "PROVE_ERROR");
        let details = tonic_types::pb::Status::decode(status.details()).unwrap();
        let prove = details
            .details
            .iter()
            .find(|d| d.type_url.ends_with("prove.gateway.v1.ProveError"))
            .unwrap();
        let prove = crate::grpc::pb::ProveError::decode(prove.value.as_slice()).unwrap();
        assert_eq!(prove.raw_code, 8099);
        assert_eq!(prove.code, ProveErrorCode::Unspecified as i32);
        assert_eq!(prove.http_status, 403);
    }

    /// The number of `google.rpc.ErrorInfo` details of a status.
    fn error_infos(status: &Status) -> usize {
        pb::Status::decode(status.details())
            .unwrap()
            .details
            .iter()
            .filter(|d| d.type_url == "type.googleapis.com/google.rpc.ErrorInfo")
            .count()
    }

    #[test]
    fn a_refused_session_reads_exactly_like_prove_answering_8008() {
        let id = "0f8fad5b-d9cb-469f-a165-70867728950e";
        let prove = from_prove(
            &ProveError::Api {
                status: 403,
                code: Some(8008),
                message: "correlation ID is expired or invalid".into(),
                retry_after: None,
            },
            Some(id),
        );
        let refused = unknown_session(id, "correlation ID is expired or invalid");
        assert_eq!(refused.code(), Code::FailedPrecondition);
        assert_eq!(refused.code(), prove.code());
        assert_eq!(refused.message(), prove.message());
        // Every detail alike; ErrorInfo's metadata is a map, encoded in no fixed order.
        let others = |status: &Status| -> Vec<prost_types::Any> {
            let mut details = pb::Status::decode(status.details()).unwrap().details;
            details.retain(|d| d.type_url != "type.googleapis.com/google.rpc.ErrorInfo");
            details
        };
        assert_eq!(others(&refused), others(&prove));
        assert_eq!(others(&refused).len(), 2, "ProveError and RequestInfo");
        let info = |status: &Status| {
            let info = status.get_details_error_info().unwrap();
            (info.reason, info.domain, info.metadata)
        };
        assert_eq!(info(&refused), info(&prove));
        assert_eq!(error_infos(&refused), 1);
        assert_eq!(
            reason_of(&refused),
            ("INVALID_CORRELATION_ID".to_owned(), PROVE_DOMAIN.to_owned())
        );
    }

    #[test]
    fn session_and_idempotency_refusals_map_as_the_contract_says() {
        let down = StoreError::new("connection refused by 10.0.0.7:6379");
        let cases = [
            (
                from_idempotency(&KeyRefusal::KeyReused),
                Code::FailedPrecondition,
                "IDEMPOTENCY_KEY_REUSED",
                GATEWAY_DOMAIN,
            ),
            (
                from_idempotency(&KeyRefusal::Store(down.clone())),
                Code::Unavailable,
                "SESSION_STORE_UNAVAILABLE",
                GATEWAY_DOMAIN,
            ),
            (
                from_idempotency(&KeyRefusal::DeadlineExceeded),
                Code::DeadlineExceeded,
                "CALLER_DEADLINE_EXCEEDED",
                GATEWAY_DOMAIN,
            ),
            (
                from_idempotency(&KeyRefusal::Failed(api(429, Some(8018)))),
                Code::ResourceExhausted,
                "RATE_LIMITED",
                PROVE_DOMAIN,
            ),
        ];
        for (status, code, reason, domain) in cases {
            assert_eq!(status.code(), code, "{reason}");
            assert_eq!(reason_of(&status), (reason.to_owned(), domain.to_owned()));
            assert_eq!(error_infos(&status), 1, "{reason}");
        }
        let unavailable = store_unavailable(&down);
        assert_eq!(
            unavailable.get_details_retry_info().unwrap().retry_delay,
            Some(DEFAULT_RETRY)
        );
        assert!(
            !unavailable.message().contains("10.0.0.7"),
            "{}",
            unavailable.message()
        );
        assert!(idempotency_key_reused().get_details_retry_info().is_none());
    }

    #[test]
    fn gateway_errors_use_the_gateway_domain() {
        let cases = [
            (
                resilience::Error::RateLimited {
                    retry_after: Duration::from_millis(300),
                    limit: resilience::WaitLimit::MaxWait,
                }
                .into(),
                Code::ResourceExhausted,
                "GATEWAY_RATE_LIMITED",
            ),
            (
                resilience::Error::Overloaded {
                    retry_after: Duration::from_millis(300),
                }
                .into(),
                Code::ResourceExhausted,
                "GATEWAY_OVERLOADED",
            ),
            (
                resilience::Error::Timeout { sent: true }.into(),
                Code::DeadlineExceeded,
                "UPSTREAM_TIMEOUT",
            ),
            (
                resilience::Error::Unreachable("refused".into()).into(),
                Code::Unavailable,
                "UPSTREAM_UNAVAILABLE",
            ),
            (
                ProveError::BadResponse("x".into()),
                Code::Internal,
                "UPSTREAM_BAD_RESPONSE",
            ),
            (
                resilience::Error::Request("x".into()).into(),
                Code::Internal,
                "GATEWAY_INTERNAL_ERROR",
            ),
        ];
        for (error, code, reason) in cases {
            let status = from_prove(&error, None);
            assert_eq!(status.code(), code);
            if reason == "GATEWAY_INTERNAL_ERROR" {
                // The gateway's own fault: waiting does not fix it.
                assert!(status.get_details_retry_info().is_none());
            }
            assert_eq!(
                reason_of(&status),
                (reason.to_owned(), GATEWAY_DOMAIN.to_owned())
            );
        }
    }

    fn any_prove_error() -> impl proptest::strategy::Strategy<Value = ProveError> {
        use proptest::prelude::*;
        let secs = || (0u64..=u64::MAX).prop_map(Duration::from_secs);
        prop_oneof![
            (
                any::<u16>(),
                proptest::option::of(any::<i64>()),
                ".*",
                proptest::option::of(secs())
            )
                .prop_map(|(status, code, message, retry_after)| ProveError::Api {
                    status,
                    code,
                    message,
                    retry_after
                }),
            ".*".prop_map(ProveError::BadResponse),
            (secs(), any::<bool>()).prop_map(|(retry_after, deadline)| {
                resilience::Error::RateLimited {
                    retry_after,
                    limit: if deadline {
                        resilience::WaitLimit::Deadline
                    } else {
                        resilience::WaitLimit::MaxWait
                    },
                }
                .into()
            }),
            secs().prop_map(|retry_after| resilience::Error::Overloaded { retry_after }.into()),
            any::<bool>().prop_map(|sent| resilience::Error::Timeout { sent }.into()),
            ".*".prop_map(|m| resilience::Error::Unreachable(m).into()),
            ".*".prop_map(|m| resilience::Error::ConnectionLost(m).into()),
            ".*".prop_map(|m| resilience::Error::Request(m).into()),
        ]
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config {
            failure_persistence: None,
            ..proptest::test_runner::Config::with_cases(2_000)
        })]

        /// Every failed call's status carries exactly one ErrorInfo (AIP-193), whatever Prove
        /// answered (any status, any code, a `Retry-After` up to u64::MAX seconds) or however
        /// the transport failed.
        #[test]
        fn every_error_status_carries_exactly_one_error_info(error in any_prove_error()) {
            let status = from_prove(&error, Some("c0ffee"));
            let details = tonic_types::pb::Status::decode(status.details()).unwrap();
            let infos = details
                .details
                .iter()
                .filter(|d| d.type_url.ends_with("google.rpc.ErrorInfo"))
                .count();
            proptest::prop_assert_eq!(infos, 1);
            proptest::prop_assert!(status.get_details_error_info().is_some());
        }
    }

    #[test]
    fn refused_calls_are_unauthenticated_or_permission_denied_with_one_error_info() {
        use crate::callers::{CallerName, Unauthenticated};
        let count_infos = |status: &Status| {
            tonic_types::pb::Status::decode(status.details())
                .unwrap()
                .details
                .iter()
                .filter(|d| d.type_url.ends_with("google.rpc.ErrorInfo"))
                .count()
        };
        let status = refused(&Refusal::Unauthenticated(Unauthenticated::UnknownToken));
        assert_eq!(status.code(), Code::Unauthenticated);
        assert_eq!(
            reason_of(&status),
            (
                "CALLER_UNAUTHENTICATED".to_owned(),
                GATEWAY_DOMAIN.to_owned()
            )
        );
        assert_eq!(
            status.message(),
            "no valid credential: the bearer token is not a caller's"
        );
        assert_eq!(count_infos(&status), 1);
        assert!(
            status.get_details_retry_info().is_none(),
            "waiting does not help"
        );

        let method = "prove.gateway.v1.VerifyService/Verify";
        let status = refused(&Refusal::NotAllowed {
            caller: CallerName(std::sync::Arc::from("checkout")),
            method: method.to_owned(),
        });
        assert_eq!(status.code(), Code::PermissionDenied);
        assert_eq!(
            reason_of(&status),
            ("CALLER_NOT_ALLOWED".to_owned(), GATEWAY_DOMAIN.to_owned())
        );
        let info = status.get_details_error_info().unwrap();
        assert_eq!(info.metadata["caller"], "checkout");
        assert_eq!(info.metadata["method"], method);
        assert_eq!(
            status.message(),
            "caller `checkout` may not call prove.gateway.v1.VerifyService/Verify"
        );
        assert_eq!(count_infos(&status), 1);
    }

    #[test]
    fn invalid_arguments_name_every_field() {
        let status = invalid_argument(&[
            Violation {
                field: "phone_number",
                rule: "required".into(),
            },
            Violation {
                field: "final_target_url",
                rule: "at most 128 characters".into(),
            },
        ]);
        assert_eq!(status.code(), Code::InvalidArgument);
        let bad = status.get_details_bad_request().unwrap();
        let fields: Vec<_> = bad
            .field_violations
            .iter()
            .map(|v| v.field.as_str())
            .collect();
        assert_eq!(fields, ["phone_number", "final_target_url"]);
        // Each violation says which rule broke, so a caller can fix the field.
        let rules: Vec<_> = bad
            .field_violations
            .iter()
            .map(|v| v.description.as_str())
            .collect();
        assert_eq!(rules, ["required", "at most 128 characters"]);
        assert_eq!(reason_of(&status).0, "INVALID_FIELD");
    }
}
