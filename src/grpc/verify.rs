//! `VerifyService`: validate, convert, call Prove, convert back. No HTTP and no status codes here.

use tonic::{Request, Response, Status};

use super::pb::verify_service_server::VerifyService;
use super::pb::{VerifyRequest, VerifyResponse, VerifyStatusRequest, VerifyStatusResponse};
use super::{call_context, convert, status, validate};
use crate::prove::ProveClient;
use crate::telemetry::record_correlation_id;

/// The Verified Users service.
#[derive(Clone)]
pub struct VerifyApi {
    prove: ProveClient,
}

impl VerifyApi {
    /// A service calling Prove through `prove`.
    pub fn new(prove: ProveClient) -> Self {
        Self { prove }
    }
}

#[tonic::async_trait]
impl VerifyService for VerifyApi {
    async fn verify(
        &self,
        request: Request<VerifyRequest>,
    ) -> Result<Response<VerifyResponse>, Status> {
        let cx = call_context(&request);
        let request = request.into_inner();
        let body = convert::verify_request(&request);
        validate::verify(&request, &body).map_err(|v| status::invalid_argument(&v))?;
        let answer = self
            .prove
            .verify(&body, cx)
            .await
            .map_err(|e| status::from_prove(&e, None))?;
        record_correlation_id(&answer.correlation_id);
        Ok(Response::new(convert::verify_response(answer)))
    }

    async fn verify_status(
        &self,
        request: Request<VerifyStatusRequest>,
    ) -> Result<Response<VerifyStatusResponse>, Status> {
        let cx = call_context(&request);
        let request = request.into_inner();
        validate::verify_status(&request).map_err(|v| status::invalid_argument(&v))?;
        let id = &request.correlation_id;
        record_correlation_id(id);
        let answer = self
            .prove
            .verify_status(&convert::verify_status_request(&request), cx)
            .await
            .map_err(|e| status::from_prove(&e, Some(id)))?;
        Ok(Response::new(convert::verify_status_response(answer)))
    }
}
