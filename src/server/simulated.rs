//! The embedded simulator announces itself: every answer of the gateway's own services carries
//! `prove-gateway-simulated: true` while the simulator stands in for Prove.
//!
//! A caller that was told "verified" by a simulator believes a person proved possession of a
//! phone when nobody did. The log and the metric tell the operator; this header tells the
//! caller, who can refuse such answers in production (the client examples show how). It is a
//! response header, so it reaches the caller both on success and in a trailers-only error
//! response (where gRPC's status travels in the same header block). Health and reflection are
//! not Prove's answers and stay unmarked.
//!
//! The server adds the layer only when it started the simulator, so with a real upstream the
//! header cannot appear at all.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::{HeaderName, HeaderValue};

/// The response header that marks a simulated answer.
pub const HEADER: HeaderName = HeaderName::from_static("prove-gateway-simulated");

/// The path prefix of the gateway's own services (`/prove.gateway.v1.UnifyService/Unify`).
const SERVICES: &str = "/prove.gateway.v1.";

/// Marks the responses of the gateway's services as simulated.
#[derive(Debug, Clone, Copy, Default)]
pub struct SimulatedLayer;

impl<S> tower::Layer<S> for SimulatedLayer {
    type Service = Simulated<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Simulated { inner }
    }
}

/// The service of [`SimulatedLayer`].
#[derive(Debug, Clone)]
pub struct Simulated<S> {
    inner: S,
}

impl<S, ReqBody, ResBody> tower::Service<http::Request<ReqBody>> for Simulated<S>
where
    S: tower::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future =
        Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send + 'static>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let marked = request.uri().path().starts_with(SERVICES);
        let answer = self.inner.call(request);
        Box::pin(async move {
            let mut response = answer.await?;
            if marked {
                response
                    .headers_mut()
                    .insert(HEADER, HeaderValue::from_static("true"));
            }
            Ok(response)
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use tower::{Layer, ServiceExt};

    use super::*;

    async fn header_for(path: &str) -> Option<HeaderValue> {
        let service = SimulatedLayer.layer(tower::service_fn(|_: http::Request<()>| async {
            Ok::<_, std::convert::Infallible>(http::Response::new(()))
        }));
        let request = http::Request::builder().uri(path).body(()).unwrap();
        let response = service.oneshot(request).await.unwrap();
        response.headers().get(HEADER).cloned()
    }

    #[tokio::test]
    async fn the_gateways_services_are_marked_and_health_and_reflection_are_not() {
        for path in [
            "/prove.gateway.v1.UnifyService/Unify",
            "/prove.gateway.v1.VerifyService/VerifyStatus",
        ] {
            assert_eq!(
                header_for(path).await,
                Some(HeaderValue::from_static("true")),
                "{path}"
            );
        }
        for path in [
            "/grpc.health.v1.Health/Check",
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
            "/prove.gateway.v1",
        ] {
            assert_eq!(header_for(path).await, None, "{path}");
        }
    }
}
