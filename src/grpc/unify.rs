//! `UnifyService`: validate, convert, call Prove, convert back. No HTTP and no status codes here;
//! session ownership and idempotency keys are [`super::sessions`]'.

use tonic::{Request, Response, Status};

use super::pb::unify_service_server::UnifyService;
use super::pb::{
    UnifyBindRequest, UnifyBindResponse, UnifyOutcome, UnifyRequest, UnifyResponse,
    UnifyStatusRequest, UnifyStatusResponse,
};
use super::sessions::{SessionGuard, Start, Step, caller_of};
use super::{call_context, convert, status, validate};
use crate::callers::Flow;
use crate::prove::ProveClient;
use crate::telemetry::record_correlation_id;

/// The Unified Authentication service.
#[derive(Clone)]
pub struct UnifyApi {
    prove: ProveClient,
    sessions: SessionGuard,
}

impl UnifyApi {
    /// A service calling Prove through `prove`, its sessions guarded by `sessions`.
    pub fn new(prove: ProveClient, sessions: SessionGuard) -> Self {
        Self { prove, sessions }
    }
}

/// Whether Prove would refuse to give this status answer again: anything but `pending`.
fn is_final(answer: &UnifyStatusResponse) -> bool {
    answer.success != UnifyOutcome::Pending as i32
}

#[tonic::async_trait]
impl UnifyService for UnifyApi {
    async fn unify(
        &self,
        request: Request<UnifyRequest>,
    ) -> Result<Response<UnifyResponse>, Status> {
        let cx = call_context(&request);
        let caller = caller_of(&request);
        let request = request.into_inner();
        let body = convert::unify_request(&request);
        validate::unify(&request, &body).map_err(|v| status::invalid_argument(&v))?;
        let prove = self.prove.clone();
        let start = Start {
            caller: &caller,
            flow: Flow::Unify,
            method: "Unify",
            request: &request,
            client_request_id: &request.client_request_id,
            deadline: cx.deadline,
        };
        let call = async move { prove.unify(&body, cx).await.map(convert::unify_response) };
        let answer = self
            .sessions
            .start(start, call, |r: &UnifyResponse| &r.correlation_id)
            .await?;
        record_correlation_id(&answer.correlation_id);
        Ok(Response::new(answer))
    }

    async fn unify_status(
        &self,
        request: Request<UnifyStatusRequest>,
    ) -> Result<Response<UnifyStatusResponse>, Status> {
        let cx = call_context(&request);
        let caller = caller_of(&request);
        let request = request.into_inner();
        validate::unify_status(&request).map_err(|v| status::invalid_argument(&v))?;
        let id = &request.correlation_id;
        record_correlation_id(id);
        let body = convert::unify_status_request(&request);
        let call = async {
            let answer = self.prove.unify_status(&body, cx).await?;
            Ok(convert::unify_status_response(answer))
        };
        let answer = self
            .sessions
            .step(&caller, Step::UnifyStatus, id, call, is_final)
            .await?;
        Ok(Response::new(answer))
    }

    async fn unify_bind(
        &self,
        request: Request<UnifyBindRequest>,
    ) -> Result<Response<UnifyBindResponse>, Status> {
        let cx = call_context(&request);
        let caller = caller_of(&request);
        let request = request.into_inner();
        validate::unify_bind(&request).map_err(|v| status::invalid_argument(&v))?;
        let id = &request.correlation_id;
        record_correlation_id(id);
        let body = convert::unify_bind_request(&request);
        let call = async {
            let answer = self.prove.unify_bind(&body, cx).await?;
            Ok(convert::unify_bind_response(answer))
        };
        let answer = self
            .sessions
            .step(&caller, Step::UnifyBind, id, call, |_| false)
            .await?;
        Ok(Response::new(answer))
    }
}
