//! The sandbox test users: Prove's documented ones (section 6 of prove-api.md) plus simulator-only
//! numbers that fail in specific ways, and the phone-number normalisation used to find them.
//!
//! Identifiers Prove would generate for a person (`proveId`, the Prove Key's `deviceId`,
//! Verify's `identityId`) are derived from the phone number, so they are stable across sessions
//! like the real ones ("can re-run with the same Prove Key") and tests can compare them.

use super::Product;
use super::error::ApiError;

/// How a test user behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Behaviour {
    /// Passes every step once possession is completed.
    Pass,
    /// Unify short-term user: passes possession without the client SDK, but gets no Prove Key
    /// (no `deviceId`).
    ShortTerm,
    /// Possession always fails (Unify status `false`; Verify `possessionResult=failed`).
    PossessionFails,
    /// Verify: the identity check fails (`verifyResult=failed`).
    VerifyFails,
    /// `/v3/unify` answers 8019.
    DeviceRevoked,
    /// `/v3/unify` and `/v3/verify` answer 8010.
    CountryUnauthorized,
    /// `/v3/unify` and `/v3/verify` answer 8011.
    IdentityNotFound,
}

/// One test user, keyed by E.164 number.
#[derive(Debug)]
pub(crate) struct SandboxUser {
    pub e164: &'static str,
    /// `None`: the number answers the same error whatever the credentials' product.
    pub product: Option<Product>,
    pub behaviour: Behaviour,
}

const fn user(e164: &'static str, product: Option<Product>, behaviour: Behaviour) -> SandboxUser {
    SandboxUser {
        e164,
        product,
        behaviour,
    }
}

const UNIFY: Option<Product> = Some(Product::Unify);
const VERIFY: Option<Product> = Some(Product::Verify);

/// The table in src/simulator/README.md, in code.
static USERS: &[SandboxUser] = &[
    // Prove's Unify users (Unified Auth and Mobile Auth users behave alike here).
    user("+12001004014", UNIFY, Behaviour::Pass),
    user("+12001004015", UNIFY, Behaviour::Pass),
    user("+2001004025", UNIFY, Behaviour::Pass),
    user("+2001004026", UNIFY, Behaviour::Pass),
    user("+12001004016", UNIFY, Behaviour::Pass),
    user("+12001004017", UNIFY, Behaviour::Pass),
    user("+12001004041", UNIFY, Behaviour::Pass),
    user("+2001004027", UNIFY, Behaviour::Pass),
    user("+2001004028", UNIFY, Behaviour::Pass),
    user("+2001004043", UNIFY, Behaviour::Pass),
    user("+12001004018", UNIFY, Behaviour::ShortTerm),
    user("+2001004029", UNIFY, Behaviour::ShortTerm),
    // Prove's Verified Users users.
    user("+12001004011", VERIFY, Behaviour::Pass),
    user("+447968900002", VERIFY, Behaviour::Pass),
    user("+12001004053", VERIFY, Behaviour::Pass),
    // Simulator-only numbers (Prove's own failing users are not published).
    user("+12001009001", UNIFY, Behaviour::PossessionFails),
    user("+12001009002", UNIFY, Behaviour::DeviceRevoked),
    user("+12001009003", VERIFY, Behaviour::VerifyFails),
    user("+12001009004", VERIFY, Behaviour::PossessionFails),
    user("+12001009010", None, Behaviour::CountryUnauthorized),
    user("+12001009011", None, Behaviour::IdentityNotFound),
];

/// Normalises a phone number to E.164.
///
/// * `+` then digits: taken as is, so `+12001004014` is North American and `+2001004025` is
///   international (country code 20).
/// * 10 digits: North American without the country code (`2001004014` → `+12001004014`).
/// * 11 digits starting with 1: North American with it (`12001004014`).
/// * Other digit strings: international written without the `+`, as Prove's docs write
///   `447968900002`.
///
/// Only digits and one leading `+` are accepted; 7 to 15 digits (E.164's maximum).
pub(crate) fn normalise(field: &str, raw: &str) -> Result<String, ApiError> {
    let (plus, digits) = match raw.strip_prefix('+') {
        Some(rest) => (true, rest),
        None => (false, raw),
    };
    if !(7..=15).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::invalid(
            field,
            "must be 7 to 15 digits with an optional leading +",
        ));
    }
    Ok(if !plus && digits.len() == 10 {
        format!("+1{digits}")
    } else {
        format!("+{digits}")
    })
}

/// The test user with this E.164 number.
pub(crate) fn find(e164: &str) -> Option<&'static SandboxUser> {
    USERS.iter().find(|u| u.e164 == e164)
}

/// The test user a `proveId` (from an earlier success) belongs to.
pub(crate) fn find_by_prove_id(prove_id: &str) -> Option<&'static SandboxUser> {
    USERS.iter().find(|u| u.prove_id() == prove_id)
}

/// Looks a number up for `product`, answering the error Prove would for it: 8007 when unknown,
/// 8010 / 8011 for the numbers that always answer those, 8009 when the user belongs to the other
/// product.
pub(crate) fn user_for(
    user: Option<&'static SandboxUser>,
    product: Product,
) -> Result<&'static SandboxUser, ApiError> {
    let user = user.ok_or_else(ApiError::user_not_found)?;
    match user.behaviour {
        Behaviour::CountryUnauthorized => return Err(ApiError::country()),
        Behaviour::IdentityNotFound => return Err(ApiError::identity_not_found()),
        _ => {}
    }
    if user.product.is_some_and(|p| p != product) {
        return Err(ApiError::access_denied());
    }
    Ok(user)
}

impl SandboxUser {
    /// The person's Prove ID, stable across sessions.
    pub fn prove_id(&self) -> String {
        uuid_like("proveId", self.e164)
    }

    /// The Prove Key's device ID, stable across sessions.
    pub fn device_id(&self) -> String {
        uuid_like("deviceId", self.e164)
    }

    /// Verify's identity ID, stable across sessions.
    pub fn identity_id(&self) -> String {
        uuid_like("identityId", self.e164)
    }
}

/// A UUID-shaped identifier derived from `salt` and `key` (two FNV-1a hashes), so it is
/// deterministic without a hashing crate.
fn uuid_like(salt: &str, key: &str) -> String {
    let a = fnv1a(0xcbf2_9ce4_8422_2325, salt, key);
    let b = fnv1a(a ^ 0x9e37_79b9_7f4a_7c15, key, salt);
    let bytes = (u128::from(a) << 64) | u128::from(b);
    let hex = format!("{bytes:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

fn fnv1a(seed: u64, first: &str, second: &str) -> u64 {
    first
        .bytes()
        .chain([0u8])
        .chain(second.bytes())
        .fold(seed, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn north_american_numbers_normalise_with_or_without_country_code() {
        for raw in ["2001004014", "12001004014", "+12001004014"] {
            assert_eq!(
                normalise("phoneNumber", raw).ok().as_deref(),
                Some("+12001004014")
            );
        }
    }

    #[test]
    fn plus_prefixed_numbers_stay_international() {
        assert_eq!(
            normalise("p", "+2001004025").ok().as_deref(),
            Some("+2001004025")
        );
        assert_eq!(
            normalise("p", "447968900002").ok().as_deref(),
            Some("+447968900002")
        );
        assert!(normalise("p", "200-100-4014").is_err());
    }

    #[test]
    fn prove_ids_are_stable_and_distinct_per_user() {
        let ids: std::collections::HashSet<String> = USERS.iter().map(|u| u.prove_id()).collect();
        assert_eq!(ids.len(), USERS.len());
        let user = find("+12001004014");
        assert!(user.is_some_and(|u| find_by_prove_id(&u.prove_id()).is_some()));
    }
}
