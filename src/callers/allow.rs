//! Allow lists: which methods a caller may call.
//!
//! A pattern is a full method name, `package.Service/Method`, or all methods of one service,
//! `package.Service/*`. Nothing else: no `*` alone, no wildcard inside a name, so an allow list
//! reads exactly as the methods it grants, and a new method added to a service is granted only to
//! callers who hold that service's `*`.

/// One entry of an allow list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pattern {
    /// Exactly this method (`package.Service/Method`).
    Method(String),
    /// Every method of this service (`package.Service`, written `package.Service/*`).
    Service(String),
}

impl Pattern {
    /// Parses `package.Service/Method` or `package.Service/*`; `None` for anything else.
    pub fn parse(raw: &str) -> Option<Self> {
        let (service, method) = raw.split_once('/')?;
        if !is_qualified_service(service) {
            return None;
        }
        if method == "*" {
            Some(Self::Service(service.to_owned()))
        } else if is_identifier(method) {
            Some(Self::Method(raw.to_owned()))
        } else {
            None
        }
    }

    /// Whether this pattern grants `method` (`package.Service/Method`, no leading slash).
    pub fn matches(&self, method: &str) -> bool {
        match self {
            Self::Method(exact) => exact == method,
            Self::Service(service) => method
                .strip_prefix(service.as_str())
                .and_then(|rest| rest.strip_prefix('/'))
                .is_some_and(|name| !name.is_empty() && !name.contains('/')),
        }
    }
}

/// What one caller may call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Allow {
    /// Every method: a verified certificate when mTLS runs without a callers file, or the open
    /// gateway's anonymous caller.
    Everything,
    /// Only the methods these patterns grant (none when empty).
    Only(Vec<Pattern>),
}

impl Allow {
    /// Whether `method` (`package.Service/Method`) is granted.
    pub fn permits(&self, method: &str) -> bool {
        match self {
            Self::Everything => true,
            Self::Only(patterns) => patterns.iter().any(|p| p.matches(method)),
        }
    }
}

/// `package.Service`: at least two dot-separated identifiers (a service outside any package is
/// not one of the gateway's).
fn is_qualified_service(service: &str) -> bool {
    let mut parts = service.split('.');
    let count = parts.clone().count();
    count >= 2 && parts.all(is_identifier)
}

/// A protobuf identifier: a letter or `_`, then letters, digits or `_`.
fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const UNIFY: &str = "prove.gateway.v1.UnifyService/Unify";
    const UNIFY_STATUS: &str = "prove.gateway.v1.UnifyService/UnifyStatus";
    const VERIFY: &str = "prove.gateway.v1.VerifyService/Verify";

    #[test]
    fn a_method_pattern_grants_that_method_only() {
        let pattern = Pattern::parse(UNIFY).unwrap();
        assert_eq!(pattern, Pattern::Method(UNIFY.to_owned()));
        assert!(pattern.matches(UNIFY));
        assert!(!pattern.matches(UNIFY_STATUS), "not a prefix match");
        assert!(!pattern.matches(VERIFY));
        assert!(!pattern.matches("prove.gateway.v1.UnifyService/Unif"));
    }

    #[test]
    fn a_service_pattern_grants_every_method_of_that_service_only() {
        let pattern = Pattern::parse("prove.gateway.v1.UnifyService/*").unwrap();
        assert_eq!(
            pattern,
            Pattern::Service("prove.gateway.v1.UnifyService".to_owned())
        );
        assert!(pattern.matches(UNIFY));
        assert!(pattern.matches(UNIFY_STATUS));
        assert!(!pattern.matches(VERIFY));
        // A service whose name merely starts with the pattern's is another service.
        assert!(!pattern.matches("prove.gateway.v1.UnifyServiceV2/Unify"));
        assert!(!pattern.matches("prove.gateway.v1.UnifyService/"));
        assert!(!pattern.matches("prove.gateway.v1.UnifyService"));
        assert!(!pattern.matches("prove.gateway.v1.UnifyService/a/b"));
    }

    #[test]
    fn patterns_of_any_other_form_are_refused() {
        for raw in [
            "",
            "*",
            "/*",
            "prove.gateway.v1.UnifyService",
            "prove.gateway.v1.*",
            "prove.gateway.v1.*/Unify",
            "UnifyService/Unify",
            "prove.gateway.v1.UnifyService/Uni*",
            "prove.gateway.v1.UnifyService/",
            "prove.gateway.v1.UnifyService/Unify/x",
            "/prove.gateway.v1.UnifyService/Unify",
            "prove..UnifyService/Unify",
            "prove.gateway.v1.UnifyService/1Unify",
            "prove.gateway.v1.Unify Service/Unify",
            "prove.gateway.v1.UnifyService/Unify ",
            "prove.9gateway.UnifyService/Unify",
        ] {
            assert_eq!(Pattern::parse(raw), None, "{raw:?}");
        }
        assert!(Pattern::parse("_p.S_1/_m2").is_some());
    }

    #[test]
    fn an_allow_list_grants_only_what_it_lists() {
        let allow = Allow::Only(vec![
            Pattern::parse("prove.gateway.v1.UnifyService/*").unwrap(),
            Pattern::parse("prove.gateway.v1.VerifyService/VerifyStatus").unwrap(),
        ]);
        assert!(allow.permits(UNIFY));
        assert!(allow.permits("prove.gateway.v1.VerifyService/VerifyStatus"));
        assert!(!allow.permits(VERIFY));
        assert!(
            !Allow::Only(Vec::new()).permits(UNIFY),
            "empty grants nothing"
        );
        assert!(Allow::Everything.permits(VERIFY));
    }
}
