//! The callers file (`PROVE_GATEWAY_CALLERS_FILE`): who may call and what each may call.
//!
//! ```yaml
//! callers:
//!   - name: checkout                       # the caller's name in logs, spans and metrics
//!     identities: ["spiffe://corp/ns/shop/sa/checkout"]   # from client certificates
//!     token_sha256: ["<64 hex chars>"]     # bearer tokens, hashed
//!     allow: ["prove.gateway.v1.UnifyService/*", "prove.gateway.v1.VerifyService/VerifyStatus"]
//!     weight: 1                            # share of Prove's budget under contention
//! ```
//!
//! Parsing is strict: an unknown key is an error that names it, so a misspelt `alow` cannot
//! silently grant nothing, and a misspelt `token_sha265` cannot leave a caller without its
//! token. Errors never quote a value from the file: an operator who pastes a plain-text token
//! where a hash belongs must not find it in the gateway's logs.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;

use serde::Deserialize;
use sha2::Digest as _;

use super::CallerName;
use super::allow::{Allow, Pattern};

/// Labels the telemetry gives calls that are not a named caller's; a caller may not take them.
const RESERVED_NAMES: [&str; 2] = ["anonymous", "unauthenticated"];

/// Longest caller name: it is a metric label and a log field.
const MAX_NAME_LEN: usize = 64;

/// A SHA-256 digest, as the file stores tokens.
pub type TokenHash = [u8; 32];

/// The SHA-256 of a bearer token, as `token_sha256` lists it (in bytes, not hex).
pub fn hash_token(token: &str) -> TokenHash {
    sha2::Sha256::digest(token.as_bytes()).into()
}

/// The file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    callers: Vec<RawCaller>,
}

/// One caller as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCaller {
    name: String,
    #[serde(default)]
    identities: Vec<String>,
    #[serde(default)]
    token_sha256: Vec<String>,
    allow: Vec<String>,
    #[serde(default = "default_weight")]
    weight: u32,
}

fn default_weight() -> u32 {
    1
}

/// One caller of a valid file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerEntry {
    /// Its name in logs, spans and metrics; sessions belong to it.
    pub name: CallerName,
    /// The methods it may call.
    pub allow: Allow,
    /// Its share of Prove's budget under contention (at least 1).
    pub weight: u32,
}

/// A valid callers file: the callers, found by certificate identity or by token hash.
#[derive(Debug, Default)]
pub struct CallersFile {
    callers: Vec<Arc<CallerEntry>>,
    by_identity: HashMap<String, Arc<CallerEntry>>,
    by_token: HashMap<TokenHash, Arc<CallerEntry>>,
}

impl CallersFile {
    /// Parses and checks `text`.
    pub fn parse(text: &str) -> Result<Self, FileError> {
        let raw: RawFile =
            serde_yaml_ng::from_str(text).map_err(|e| FileError(redact(&e.to_string())))?;
        let mut file = Self::default();
        let mut names: HashMap<String, usize> = HashMap::new();
        for (index, raw) in raw.callers.into_iter().enumerate() {
            let at = |reason: String| FileError(format!("callers[{index}]: {reason}"));
            check_name(&raw.name).map_err(at)?;
            if let Some(first) = names.insert(raw.name.clone(), index) {
                return Err(at(format!(
                    "the name `{}` is already taken by callers[{first}]",
                    raw.name
                )));
            }
            if raw.weight == 0 {
                return Err(at("weight must be at least 1".into()));
            }
            if raw.identities.is_empty() && raw.token_sha256.is_empty() {
                return Err(at(
                    "no identities and no token_sha256: it could never call".into()
                ));
            }
            let mut patterns = Vec::with_capacity(raw.allow.len());
            for (i, pattern) in raw.allow.iter().enumerate() {
                patterns.push(Pattern::parse(pattern).ok_or_else(|| {
                    at(format!(
                        "allow[{i}] `{pattern}` is neither package.Service/Method nor package.Service/*"
                    ))
                })?);
            }
            let entry = Arc::new(CallerEntry {
                name: CallerName(Arc::from(raw.name.as_str())),
                allow: Allow::Only(patterns),
                weight: raw.weight,
            });
            for (i, identity) in raw.identities.into_iter().enumerate() {
                if identity.trim().is_empty() {
                    return Err(at(format!("identities[{i}] is empty")));
                }
                match file.by_identity.entry(identity) {
                    Entry::Occupied(taken) => {
                        return Err(at(format!(
                            "identities[{i}] `{}` is also caller `{}`'s",
                            taken.key(),
                            taken.get().name.as_str()
                        )));
                    }
                    Entry::Vacant(slot) => {
                        slot.insert(entry.clone());
                    }
                }
            }
            for (i, hex) in raw.token_sha256.iter().enumerate() {
                // The value is not quoted: it may be a token pasted by mistake.
                let hash = parse_hash(hex)
                    .ok_or_else(|| at(format!("token_sha256[{i}] is not 64 hex digits")))?;
                match file.by_token.entry(hash) {
                    Entry::Occupied(taken) => {
                        return Err(at(format!(
                            "token_sha256[{i}] is also caller `{}`'s",
                            taken.get().name.as_str()
                        )));
                    }
                    Entry::Vacant(slot) => {
                        slot.insert(entry.clone());
                    }
                }
            }
            file.callers.push(entry);
        }
        Ok(file)
    }

    /// The caller a client certificate with `identity` belongs to.
    pub fn by_identity(&self, identity: &str) -> Option<&Arc<CallerEntry>> {
        self.by_identity.get(identity)
    }

    /// The caller whose token has this hash.
    pub fn by_token(&self, hash: &TokenHash) -> Option<&Arc<CallerEntry>> {
        self.by_token.get(hash)
    }

    /// Every caller, in the file's order.
    pub fn callers(&self) -> &[Arc<CallerEntry>] {
        &self.callers
    }
}

/// Why a callers file cannot be used. The message names the entry and the key, never a value
/// that could be a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FileError(String);

impl From<String> for FileError {
    fn from(message: String) -> Self {
        Self(message)
    }
}

/// Names are labels: short, and of characters that need no escaping anywhere.
fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(format!("name must be 1 to {MAX_NAME_LEN} characters"));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(format!(
            "name `{name}` may hold only letters, digits, '-', '_' and '.'"
        ));
    }
    if RESERVED_NAMES.contains(&name) {
        return Err(format!("name `{name}` is reserved"));
    }
    Ok(())
}

/// 64 hex digits (either case) as 32 bytes.
fn parse_hash(hex: &str) -> Option<TokenHash> {
    let digits = hex.as_bytes();
    if digits.len() != 64 {
        return None;
    }
    let mut hash = [0u8; 32];
    for (byte, pair) in hash.iter_mut().zip(digits.chunks_exact(2)) {
        *byte = (hex_digit(pair[0])? << 4) | hex_digit(pair[1])?;
    }
    Some(hash)
}

fn hex_digit(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

/// The YAML parser's message without the values it quotes (`invalid type: string "…"`): keys
/// are named in backticks and stay; a quoted value could be a token under the wrong key.
fn redact(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut quoted = false;
    for c in message.chars() {
        if c == '"' {
            if !quoted {
                out.push_str("\"…\"");
            }
            quoted = !quoted;
        } else if !quoted {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// SHA-256 of "abc" (FIPS 180-2, appendix B.1).
    const ABC_SHA256: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    fn hash(hex: &str) -> TokenHash {
        parse_hash(hex).unwrap()
    }

    fn error(text: &str) -> String {
        CallersFile::parse(text).unwrap_err().to_string()
    }

    /// A file of one caller whose fields are `fields` (YAML lines indented under the entry).
    fn one(fields: &str) -> String {
        format!("callers:\n  - {}\n", fields.trim().replace('\n', "\n    "))
    }

    const CHECKOUT: &str = r#"
callers:
  - name: checkout
    identities: ["spiffe://corp/ns/shop/sa/checkout"]
    token_sha256: ["ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"]
    allow: ["prove.gateway.v1.UnifyService/*", "prove.gateway.v1.VerifyService/VerifyStatus"]
    weight: 3
  - name: billing
    token_sha256: ["BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AE"]
    allow: []
"#;

    #[test]
    fn the_issues_example_parses_with_every_field() {
        let file = CallersFile::parse(CHECKOUT).unwrap();
        let names: Vec<_> = file.callers().iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["checkout", "billing"]);
        let checkout = file
            .by_identity("spiffe://corp/ns/shop/sa/checkout")
            .unwrap();
        assert_eq!(checkout.name.as_str(), "checkout");
        assert_eq!(checkout.weight, 3);
        assert_eq!(
            checkout.allow,
            Allow::Only(vec![
                Pattern::Service("prove.gateway.v1.UnifyService".into()),
                Pattern::Method("prove.gateway.v1.VerifyService/VerifyStatus".into()),
            ])
        );
        assert_eq!(
            file.by_token(&hash_token("abc")).unwrap().name.as_str(),
            "checkout"
        );
        // Upper-case hex is the same digest; the last digit differs from "abc"'s.
        let mut billing = hash_token("abc");
        billing[31] = 0xae;
        let billing = file.by_token(&billing).unwrap();
        assert_eq!(billing.name.as_str(), "billing");
        assert_eq!(billing.weight, 1, "weight defaults to 1");
        assert_eq!(billing.allow, Allow::Only(Vec::new()));
        assert!(file.by_identity("spiffe://corp/ns/shop/sa/other").is_none());
        assert!(file.by_token(&hash_token("abd")).is_none());
    }

    #[test]
    fn tokens_hash_to_sha256() {
        assert_eq!(hash_token("abc"), hash(ABC_SHA256));
    }

    #[test]
    fn hex_digests_parse_in_either_case_and_nothing_else_does() {
        let upper = ABC_SHA256.to_ascii_uppercase();
        assert_eq!(parse_hash(&upper), parse_hash(ABC_SHA256));
        assert_eq!(hash("00ff".repeat(16).as_str())[..2], [0x00, 0xff]);
        assert_eq!(hash("0123456789abcdef".repeat(4).as_str())[..8], {
            [0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef]
        });
        for bad in [
            "",
            &ABC_SHA256[..63],
            &format!("{ABC_SHA256}0"),
            &format!("{}g", &ABC_SHA256[..63]),
            &format!("{} ", &ABC_SHA256[..63]),
            &format!("{}:", &ABC_SHA256[..63]),
            &format!("{}/", &ABC_SHA256[..63]),
            &format!("{}@", &ABC_SHA256[..63]),
            &format!("{}G", &ABC_SHA256[..63]),
            &format!("{}`", &ABC_SHA256[..63]),
        ] {
            assert_eq!(parse_hash(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn an_unknown_key_is_named() {
        let text = error(&one("name: a\ntokens: [\"s3cr3t-plain-token\"]\nallow: []"));
        assert!(text.contains("unknown field `tokens`"), "{text}");
        assert!(!text.contains("s3cr3t"), "{text}");
        let text = error("callers: []\nextra: 1\n");
        assert!(text.contains("unknown field `extra`"), "{text}");
    }

    #[test]
    fn missing_keys_are_named() {
        assert!(error("{}").contains("missing field `callers`"));
        let text = error(&one(&format!("name: a\ntoken_sha256: [{ABC_SHA256}]")));
        assert!(text.contains("missing field `allow`"), "{text}");
        let text = error(&one(&format!("token_sha256: [{ABC_SHA256}]\nallow: []")));
        assert!(text.contains("missing field `name`"), "{text}");
    }

    #[test]
    fn values_of_the_wrong_type_are_not_quoted() {
        let text = error(&one(&format!(
            "name: a\ntoken_sha256: [{ABC_SHA256}]\nallow: []\nweight: s3cr3t-plain-token"
        )));
        assert!(text.contains("weight"), "{text}");
        assert!(!text.contains("s3cr3t"), "{text}");
    }

    #[test]
    fn a_hash_that_is_not_64_hex_digits_is_refused_without_quoting_it() {
        let text = error(&one(
            "name: a\ntoken_sha256: [\"s3cr3t-plain-token\"]\nallow: []",
        ));
        assert_eq!(text, "callers[0]: token_sha256[0] is not 64 hex digits");
    }

    #[test]
    fn names_are_unique() {
        let text = format!(
            "callers:\n  - {{name: a, token_sha256: [{ABC_SHA256}], allow: []}}\n  - {{name: b, identities: [x], allow: []}}\n  - {{name: a, identities: [y], allow: []}}\n"
        );
        assert_eq!(
            error(&text),
            "callers[2]: the name `a` is already taken by callers[0]"
        );
    }

    #[test]
    fn a_token_or_an_identity_belongs_to_one_caller() {
        let text = format!(
            "callers:\n  - {{name: a, token_sha256: [{ABC_SHA256}], allow: []}}\n  - {{name: b, token_sha256: [{}], allow: []}}\n",
            ABC_SHA256.to_ascii_uppercase()
        );
        assert_eq!(
            error(&text),
            "callers[1]: token_sha256[0] is also caller `a`'s"
        );
        let text = "callers:\n  - {name: a, identities: [x], allow: []}\n  - {name: b, identities: [y, x], allow: []}\n";
        assert_eq!(
            error(text),
            "callers[1]: identities[1] `x` is also caller `a`'s"
        );
    }

    #[test]
    fn allow_patterns_are_checked() {
        let text = error(&one(
            "name: a\nidentities: [x]\nallow: [\"prove.gateway.v1.UnifyService/*\", \"*\"]",
        ));
        assert_eq!(
            text,
            "callers[0]: allow[1] `*` is neither package.Service/Method nor package.Service/*"
        );
    }

    #[test]
    fn weight_is_at_least_one() {
        let text = error(&one("name: a\nidentities: [x]\nallow: []\nweight: 0"));
        assert_eq!(text, "callers[0]: weight must be at least 1");
        let text = error(&one("name: a\nidentities: [x]\nallow: []\nweight: -1"));
        assert!(text.contains("weight"), "{text}");
    }

    #[test]
    fn a_caller_without_any_credential_is_refused() {
        let text = error(&one("name: a\nallow: []"));
        assert_eq!(
            text,
            "callers[0]: no identities and no token_sha256: it could never call"
        );
        let text = error(&one("name: a\nidentities: [\" \"]\nallow: []"));
        assert_eq!(text, "callers[0]: identities[0] is empty");
    }

    #[test]
    fn names_are_short_plain_and_not_reserved() {
        for (name, reason) in [
            ("\"\"", "name must be 1 to 64 characters"),
            (&"a".repeat(65), "name must be 1 to 64 characters"),
            (
                "\"a b\"",
                "name `a b` may hold only letters, digits, '-', '_' and '.'",
            ),
            (
                "\"a{b}\"",
                "name `a{b}` may hold only letters, digits, '-', '_' and '.'",
            ),
            ("anonymous", "name `anonymous` is reserved"),
            ("unauthenticated", "name `unauthenticated` is reserved"),
        ] {
            let text = error(&one(&format!("name: {name}\nidentities: [x]\nallow: []")));
            assert_eq!(text, format!("callers[0]: {reason}"), "{name}");
        }
        let long = "a".repeat(64);
        let file =
            CallersFile::parse(&one(&format!("name: {long}\nidentities: [x]\nallow: []"))).unwrap();
        assert_eq!(file.callers()[0].name.as_str(), long);
        assert!(CallersFile::parse(&one("name: Shop-1_a.b\nidentities: [x]\nallow: []")).is_ok());
    }

    #[test]
    fn an_empty_list_of_callers_is_valid_and_admits_nobody() {
        let file = CallersFile::parse("callers: []").unwrap();
        assert!(file.callers().is_empty());
        assert!(file.by_token(&hash_token("abc")).is_none());
    }

    #[test]
    fn broken_yaml_is_an_error() {
        assert!(CallersFile::parse("callers: [").is_err());
        assert!(CallersFile::parse("").is_err());
    }

    #[test]
    fn quoted_values_are_redacted_and_backticked_keys_kept() {
        assert_eq!(
            redact(r#"invalid type: string "s3cr3t", expected u32 at `weight`"#),
            r#"invalid type: string "…", expected u32 at `weight`"#
        );
        assert_eq!(redact(r#"a "b" c "d"#), r#"a "…" c "…""#);
        assert_eq!(redact("plain"), "plain");
    }
}
