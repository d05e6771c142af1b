//! `UnifyService`: validate, convert, call Prove, convert back. No HTTP and no status codes here.

use tonic::{Request, Response, Status};

use super::pb::unify_service_server::UnifyService;
use super::pb::{
    UnifyBindRequest, UnifyBindResponse, UnifyRequest, UnifyResponse, UnifyStatusRequest,
    UnifyStatusResponse,
};
use super::{call_context, convert, status, validate};
use crate::prove::ProveClient;
use crate::telemetry::record_correlation_id;

/// The Unified Authentication service.
#[derive(Clone)]
pub struct UnifyApi {
    prove: ProveClient,
}

impl UnifyApi {
    /// A service calling Prove through `prove`.
    pub fn new(prove: ProveClient) -> Self {
        Self { prove }
    }
}

#[tonic::async_trait]
impl UnifyService for UnifyApi {
    async fn unify(
        &self,
        request: Request<UnifyRequest>,
    ) -> Result<Response<UnifyResponse>, Status> {
        let cx = call_context(&request);
        let request = request.into_inner();
        let body = convert::unify_request(&request);
        validate::unify(&request, &body).map_err(|v| status::invalid_argument(&v))?;
        let answer = self
            .prove
            .unify(&body, cx)
            .await
            .map_err(|e| status::from_prove(&e, None))?;
        record_correlation_id(&answer.correlation_id);
        Ok(Response::new(convert::unify_response(answer)))
    }

    async fn unify_status(
        &self,
        request: Request<UnifyStatusRequest>,
    ) -> Result<Response<UnifyStatusResponse>, Status> {
        let cx = call_context(&request);
        let request = request.into_inner();
        validate::unify_status(&request).map_err(|v| status::invalid_argument(&v))?;
        let id = &request.correlation_id;
        record_correlation_id(id);
        let answer = self
            .prove
            .unify_status(&convert::unify_status_request(&request), cx)
            .await
            .map_err(|e| status::from_prove(&e, Some(id)))?;
        Ok(Response::new(convert::unify_status_response(answer)))
    }

    async fn unify_bind(
        &self,
        request: Request<UnifyBindRequest>,
    ) -> Result<Response<UnifyBindResponse>, Status> {
        let cx = call_context(&request);
        let request = request.into_inner();
        validate::unify_bind(&request).map_err(|v| status::invalid_argument(&v))?;
        let id = &request.correlation_id;
        record_correlation_id(id);
        let answer = self
            .prove
            .unify_bind(&convert::unify_bind_request(&request), cx)
            .await
            .map_err(|e| status::from_prove(&e, Some(id)))?;
        Ok(Response::new(convert::unify_bind_response(answer)))
    }
}
