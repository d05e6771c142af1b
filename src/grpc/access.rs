//! The access check: a tower layer between the server's edge and tonic's routes that decides,
//! for each call of a `prove.gateway.v1` service, who is calling and whether it may call this
//! method, before any handler runs, so a refused call never reaches Prove. Health and
//! reflection pass unchecked: Kubernetes probes and grpcurl carry no credential.
//!
//! For a call it serves, the layer
//! - puts the caller's [`crate::callers::CallerName`] in the request's extensions, where
//!   handlers find it (sessions and idempotency keys belong to it);
//! - names the caller on the RPC's telemetry slot ([`RpcCaller`]), for the span, the metrics and
//!   the audit line;
//! - removes the `authorization` metadata: nothing below needs the token, so nothing below can
//!   log it by mistake.
//!
//! A refused call is answered here, with the status [`status::refused`] builds.

use std::task::{Context, Poll};

use futures::future::{Either, Ready, ready};
use tonic::body::Body;

use super::status;
use crate::callers::{Caller, Callers, PeerIdentity, Refusal};
use crate::telemetry::RpcCaller;

/// The request paths the check applies to: the contract's services.
const CHECKED_PREFIX: &str = "/prove.gateway.v1.";

/// Layer for [`Access`]. Build one per server; clones share the callers.
#[derive(Debug, Clone)]
pub struct AccessLayer {
    callers: Callers,
}

impl AccessLayer {
    /// Checks calls against `callers`.
    pub fn new(callers: Callers) -> Self {
        Self { callers }
    }
}

impl<S> tower::Layer<S> for AccessLayer {
    type Service = Access<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Access {
            inner,
            callers: self.callers.clone(),
        }
    }
}

/// See [`AccessLayer`].
#[derive(Debug, Clone)]
pub struct Access<S> {
    inner: S,
    callers: Callers,
}

impl<S, B> tower::Service<http::Request<B>> for Access<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<Body>>,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = Either<S::Future, Ready<Result<http::Response<Body>, S::Error>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        // Readiness is the routes' (always ready); a refused call leaves it unused.
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let Some(method) = checked_method(request.uri().path()) else {
            return Either::Left(self.inner.call(request));
        };
        match self.admit(&request, method) {
            Ok(caller) => {
                request.headers_mut().remove(http::header::AUTHORIZATION);
                request.extensions_mut().insert(caller.name().clone());
                Either::Left(self.inner.call(request))
            }
            Err(refusal) => {
                if let Refusal::Unauthenticated(why) = &refusal {
                    tracing::debug!(method, why = why.why(), "call refused: no valid credential");
                }
                Either::Right(ready(Ok(status::refused(&refusal).into_http())))
            }
        }
    }
}

impl<S> Access<S> {
    /// Authenticates the call, names its caller on the telemetry slot (a caller refused for
    /// the method is still named: the refusal is its own), then authorizes it.
    fn admit<B>(&self, request: &http::Request<B>, method: &str) -> Result<Caller, Refusal> {
        let peer = request.extensions().get::<PeerIdentity>();
        // A value that is not visible ASCII cannot be `Bearer <token>`: passed on as empty, it
        // is refused as a malformed credential.
        let authorization = request
            .headers()
            .get(http::header::AUTHORIZATION)
            .map(|value| value.to_str().unwrap_or_default());
        let caller = self.callers.authenticate(peer, authorization)?;
        if let Some(slot) = request.extensions().get::<RpcCaller>() {
            let name = caller.name().0.clone();
            if caller.is_authenticated() {
                slot.authenticated(name);
            } else {
                slot.unverified(name);
            }
        }
        self.callers.authorize(&caller, method)?;
        Ok(caller)
    }
}

/// `package.Service/Method` of a path the check applies to; `None` for health, reflection and
/// anything else outside the contract.
fn checked_method(path: &str) -> Option<&str> {
    path.starts_with(CHECKED_PREFIX).then(|| &path[1..])
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::convert::Infallible;
    use std::sync::Arc;

    use parking_lot::Mutex;
    use tonic::Code;
    use tower::{Layer as _, ServiceExt as _};

    use super::*;
    use crate::callers::CallerName;
    use crate::callers::file::{CallersFile, hash_token};
    use crate::telemetry::NO_CALLER;

    const UNIFY: &str = "/prove.gateway.v1.UnifyService/Unify";
    const VERIFY: &str = "/prove.gateway.v1.VerifyService/Verify";
    const HEALTH: &str = "/grpc.health.v1.Health/Check";

    fn hex(token: &str) -> String {
        hash_token(token)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// `checkout` ("checkout-token") may call UnifyService only.
    fn callers(mtls: bool) -> Callers {
        let file = CallersFile::parse(&format!(
            "callers:\n  - name: checkout\n    identities: [\"spiffe://corp/checkout\"]\n    token_sha256: [{}]\n    allow: [\"prove.gateway.v1.UnifyService/*\"]\n",
            hex("checkout-token")
        ))
        .unwrap();
        Callers::from_file(file, mtls, "/nonexistent")
    }

    /// What the routes below the layer saw of a request that reached them.
    #[derive(Debug, Clone, Default)]
    struct Seen {
        caller: Option<CallerName>,
        authorization: Option<String>,
    }

    /// Sends one request for `path` through the layer, with `configure` adding metadata and
    /// extensions; returns the answer's gRPC code (OK when the routes were reached), what the
    /// routes saw (if reached), and the telemetry slot.
    async fn call(
        callers: Callers,
        path: &str,
        configure: impl FnOnce(&mut http::Request<()>),
    ) -> (Code, Option<Seen>, RpcCaller) {
        let seen = Arc::new(Mutex::new(None));
        let routes = {
            let seen = seen.clone();
            tower::service_fn(move |request: http::Request<()>| {
                *seen.lock() = Some(Seen {
                    caller: request.extensions().get::<CallerName>().cloned(),
                    authorization: request
                        .headers()
                        .get("authorization")
                        .map(|v| v.to_str().unwrap().to_owned()),
                });
                async { Ok::<_, Infallible>(http::Response::new(Body::empty())) }
            })
        };
        let slot = RpcCaller::default();
        let mut request = http::Request::builder().uri(path).body(()).unwrap();
        request.extensions_mut().insert(slot.clone());
        configure(&mut request);
        let response = AccessLayer::new(callers)
            .layer(routes)
            .oneshot(request)
            .await
            .unwrap();
        let code = response
            .headers()
            .get("grpc-status")
            .map_or(Code::Ok, |v| Code::from_bytes(v.as_bytes()));
        let seen = seen.lock().clone();
        (code, seen, slot)
    }

    fn bearer(token: &'static str) -> impl FnOnce(&mut http::Request<()>) {
        move |request| {
            request.headers_mut().insert(
                "authorization",
                http::HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
            );
        }
    }

    fn slot_label(slot: &RpcCaller) -> (String, bool) {
        // Through the telemetry's own reading: an unfilled slot reads as NO_CALLER.
        let (name, authenticated) = slot.label();
        (name.to_string(), authenticated)
    }

    #[tokio::test]
    async fn an_allowed_caller_reaches_the_routes_named_and_without_its_token() {
        let (code, seen, slot) = call(callers(false), UNIFY, bearer("checkout-token")).await;
        assert_eq!(code, Code::Ok);
        let seen = seen.expect("the routes were reached");
        assert_eq!(seen.caller.unwrap().as_str(), "checkout");
        assert_eq!(seen.authorization, None, "the token goes no further");
        assert_eq!(slot_label(&slot), ("checkout".to_owned(), true));
    }

    #[tokio::test]
    async fn a_method_outside_the_allow_list_is_permission_denied_and_never_routed() {
        let (code, seen, slot) = call(callers(false), VERIFY, bearer("checkout-token")).await;
        assert_eq!(code, Code::PermissionDenied);
        assert!(seen.is_none());
        assert_eq!(slot_label(&slot), ("checkout".to_owned(), true));
    }

    #[tokio::test]
    async fn a_missing_or_unknown_token_is_unauthenticated_and_never_routed() {
        let nothing = |_: &mut http::Request<()>| {};
        let (code, seen, slot) = call(callers(false), UNIFY, nothing).await;
        assert_eq!(code, Code::Unauthenticated);
        assert!(seen.is_none());
        assert_eq!(slot_label(&slot), (NO_CALLER.to_owned(), false));
        let (code, seen, slot) = call(callers(false), UNIFY, bearer("nope")).await;
        assert_eq!(code, Code::Unauthenticated);
        assert!(seen.is_none());
        assert_eq!(slot_label(&slot), (NO_CALLER.to_owned(), false));
        let not_ascii = |request: &mut http::Request<()>| {
            request.headers_mut().insert(
                "authorization",
                http::HeaderValue::from_bytes(b"Bearer \xff").unwrap(),
            );
        };
        let (code, seen, _) = call(callers(false), UNIFY, not_ascii).await;
        assert_eq!(code, Code::Unauthenticated);
        assert!(seen.is_none());
    }

    #[tokio::test]
    async fn health_reflection_and_other_paths_pass_unchecked() {
        for path in [
            HEALTH,
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
            "/prove.gateway.v1x.UnifyService/Unify",
            "/other.Service/Method",
        ] {
            let (code, seen, slot) = call(callers(false), path, |_| {}).await;
            assert_eq!(code, Code::Ok, "{path}");
            let seen = seen.unwrap();
            assert!(seen.caller.is_none(), "{path}");
            assert_eq!(slot_label(&slot), (NO_CALLER.to_owned(), false));
        }
    }

    #[tokio::test]
    async fn with_mtls_the_connections_certificate_identity_is_the_caller() {
        let certificate = |identity: &'static str| {
            move |request: &mut http::Request<()>| {
                request
                    .extensions_mut()
                    .insert(PeerIdentity(Arc::from(identity)));
            }
        };
        let (code, seen, _) =
            call(callers(true), UNIFY, certificate("spiffe://corp/checkout")).await;
        assert_eq!(code, Code::Ok);
        assert_eq!(seen.unwrap().caller.unwrap().as_str(), "checkout");
        let (code, ..) = call(callers(true), UNIFY, certificate("spiffe://corp/other")).await;
        assert_eq!(code, Code::Unauthenticated);
        let (code, ..) = call(callers(true), UNIFY, bearer("checkout-token")).await;
        assert_eq!(
            code,
            Code::Unauthenticated,
            "no certificate: a token is not enough"
        );

        // mTLS without a callers file: the identity itself is the caller, allowed everything.
        let (code, seen, slot) = call(
            Callers::certificates(),
            VERIFY,
            certificate("spiffe://corp/any"),
        )
        .await;
        assert_eq!(code, Code::Ok);
        assert_eq!(seen.unwrap().caller.unwrap().as_str(), "spiffe://corp/any");
        assert_eq!(slot_label(&slot), ("spiffe://corp/any".to_owned(), true));
    }

    #[tokio::test]
    async fn an_open_gateway_names_every_call_anonymous_unverified() {
        let (code, seen, slot) = call(Callers::open(), VERIFY, |_| {}).await;
        assert_eq!(code, Code::Ok);
        assert_eq!(seen.unwrap().caller, Some(CallerName::anonymous()));
        assert_eq!(slot_label(&slot), ("anonymous".to_owned(), false));
    }
}
