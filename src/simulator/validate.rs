//! Request validation as Prove does it: JSON content type, at most 4 KB, a JSON object with
//! correctly typed fields, then the per-field rules of Prove's reference (required fields, enums,
//! lengths and allowed characters). Every failure is 400 / 8001 with the field named in the
//! message and its value never repeated.

use axum::http::HeaderMap;
use axum::http::header::CONTENT_TYPE;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::error::ApiError;
use super::models::{Fields, Kind};

/// Prove's documented limit: "Request must be valid JSON, at most 4 KB".
pub(crate) const MAX_BODY_BYTES: usize = 4096;
/// `finalTargetUrl` limit.
const MAX_URL_CHARS: usize = 128;
/// `smsMessage` limit (characters, non-ASCII allowed).
const MAX_SMS_CHARS: usize = 160;

/// Where the end user starts the flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PossessionType {
    Mobile,
    Desktop,
    /// Customer-supplied possession.
    None,
}

impl PossessionType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mobile => "mobile",
            Self::Desktop => "desktop",
            Self::None => "none",
        }
    }
}

/// Checks size, content type and JSON shape, then deserializes into `T`.
pub(crate) fn json_body<T: Fields + DeserializeOwned>(
    headers: &HeaderMap,
    body: &[u8],
) -> Result<T, ApiError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(ApiError::malformed("request body is larger than 4 KB"));
    }
    if !is_json(headers) {
        return Err(ApiError::malformed("Content-Type must be application/json"));
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|_| ApiError::malformed("request body is not valid JSON"))?;
    let Value::Object(mut object) = value else {
        return Err(ApiError::malformed("request body must be a JSON object"));
    };
    for (name, kind) in T::FIELDS {
        match (object.get(*name), kind) {
            (None | Some(Value::Null), _)
            | (Some(Value::String(_)), Kind::Str)
            | (Some(Value::Bool(_)), Kind::Bool) => {}
            (Some(_), Kind::Str) => return Err(ApiError::invalid(name, "must be a string")),
            (Some(_), Kind::Bool) => return Err(ApiError::invalid(name, "must be a boolean")),
        }
    }
    // Unknown fields are ignored, as Prove's Go services do; only known ones are passed on.
    object.retain(|key, _| T::FIELDS.iter().any(|(name, _)| name == key));
    serde_json::from_value(Value::Object(object))
        .map_err(|_| ApiError::malformed("request body does not match the operation"))
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"))
}

/// A required string field: absent → "is missing", blank → "must not be empty".
pub(crate) fn required<'a>(field: &str, value: Option<&'a str>) -> Result<&'a str, ApiError> {
    match value {
        None => Err(ApiError::missing(field)),
        Some(v) if v.trim().is_empty() => Err(ApiError::invalid(field, "must not be empty")),
        Some(v) => Ok(v),
    }
}

pub(crate) fn possession_type(value: Option<&str>) -> Result<PossessionType, ApiError> {
    match required("possessionType", value)? {
        "mobile" => Ok(PossessionType::Mobile),
        "desktop" => Ok(PossessionType::Desktop),
        "none" => Ok(PossessionType::None),
        _ => Err(ApiError::invalid(
            "possessionType",
            "must be one of desktop, mobile, none",
        )),
    }
}

/// `finalTargetUrl`: required for desktop (the Instant Link redirects there), checked whenever
/// present.
pub(crate) fn final_target_url(
    possession: PossessionType,
    value: Option<&str>,
) -> Result<(), ApiError> {
    const FIELD: &str = "finalTargetUrl";
    let url = match (possession, value) {
        (PossessionType::Desktop, v) => required(FIELD, v)?,
        (_, None) => return Ok(()),
        (_, Some(v)) => v,
    };
    if url.chars().count() > MAX_URL_CHARS {
        return Err(ApiError::invalid(FIELD, "longer than 128 characters"));
    }
    if !url
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-._+=/:?".contains(c))
    {
        return Err(ApiError::invalid(
            FIELD,
            "allowed characters are letters, digits and -._+=/:?",
        ));
    }
    Ok(())
}

pub(crate) fn sms_message(value: Option<&str>) -> Result<(), ApiError> {
    match value {
        Some(v) if v.chars().count() > MAX_SMS_CHARS => Err(ApiError::invalid(
            "smsMessage",
            "longer than 160 characters",
        )),
        _ => Ok(()),
    }
}

/// Optional field limited to ASCII letters, digits and `extra` (emailAddress, ipAddress).
pub(crate) fn charset(field: &str, value: Option<&str>, extra: &str) -> Result<(), ApiError> {
    match value {
        Some(v)
            if !v
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || extra.contains(c)) =>
        {
            Err(ApiError::invalid(
                field,
                &format!("allowed characters are letters, digits and {extra}"),
            ))
        }
        _ => Ok(()),
    }
}

/// `correlationId`: required, and must match Prove's documented pattern
/// `^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`.
pub(crate) fn correlation_id(value: Option<&str>) -> Result<&str, ApiError> {
    let id = required("correlationId", value)?;
    if is_lowercase_uuid(id) {
        Ok(id)
    } else {
        Err(ApiError::invalid(
            "correlationId",
            "must be a lowercase UUID",
        ))
    }
}

fn is_lowercase_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups.iter().zip([8, 4, 4, 4, 12]).all(|(g, len)| {
            g.len() == len && g.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn correlation_id_pattern_accepts_only_lowercase_uuids() {
        assert!(is_lowercase_uuid("0f8fad5b-d9cb-469f-a165-70867728950e"));
        assert!(!is_lowercase_uuid("0F8FAD5B-D9CB-469F-A165-70867728950E"));
        assert!(!is_lowercase_uuid("0f8fad5bd9cb469fa16570867728950e"));
        assert!(!is_lowercase_uuid("0f8fad5b-d9cb-469f-a165-70867728950"));
    }

    #[test]
    fn final_target_url_is_required_for_desktop_only() {
        assert!(final_target_url(PossessionType::Desktop, None).is_err());
        assert!(final_target_url(PossessionType::Mobile, None).is_ok());
        assert!(final_target_url(PossessionType::Mobile, Some("https://x.example/a b")).is_err());
    }
}
