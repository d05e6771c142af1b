//! `VerifyService`: validate, convert, call Prove, convert back. No HTTP and no status codes here;
//! session ownership and idempotency keys are [`super::sessions`]'.

use tonic::{Request, Response, Status};

use super::pb::verify_service_server::VerifyService;
use super::pb::{
    VerifyOutcome, VerifyRequest, VerifyResponse, VerifyStatusRequest, VerifyStatusResponse,
};
use super::sessions::{SessionGuard, Start, Step, caller_of};
use super::{call_context, convert, status, validate};
use crate::callers::Flow;
use crate::prove::ProveClient;
use crate::telemetry::record_correlation_id;

/// The Verified Users service.
#[derive(Clone)]
pub struct VerifyApi {
    prove: ProveClient,
    sessions: SessionGuard,
}

impl VerifyApi {
    /// A service calling Prove through `prove`, its sessions guarded by `sessions`.
    pub fn new(prove: ProveClient, sessions: SessionGuard) -> Self {
        Self { prove, sessions }
    }
}

/// Whether Prove would refuse to give this status answer again: a `pending` answer may be
/// polled, any other is final.
fn is_final(answer: &VerifyStatusResponse) -> bool {
    answer.success != VerifyOutcome::Pending as i32
}

#[tonic::async_trait]
impl VerifyService for VerifyApi {
    async fn verify(
        &self,
        request: Request<VerifyRequest>,
    ) -> Result<Response<VerifyResponse>, Status> {
        let cx = call_context(&request);
        let caller = caller_of(&request);
        let request = request.into_inner();
        let body = convert::verify_request(&request);
        validate::verify(&request, &body).map_err(|v| status::invalid_argument(&v))?;
        let prove = self.prove.clone();
        let start = Start {
            caller: &caller,
            flow: Flow::Verify,
            method: "Verify",
            request: &request,
            client_request_id: &request.client_request_id,
            deadline: cx.deadline,
        };
        let call = async move { prove.verify(&body, cx).await.map(convert::verify_response) };
        let answer = self
            .sessions
            .start(start, call, |r: &VerifyResponse| &r.correlation_id)
            .await?;
        record_correlation_id(&answer.correlation_id);
        Ok(Response::new(answer))
    }

    async fn verify_status(
        &self,
        request: Request<VerifyStatusRequest>,
    ) -> Result<Response<VerifyStatusResponse>, Status> {
        let cx = call_context(&request);
        let caller = caller_of(&request);
        let request = request.into_inner();
        validate::verify_status(&request).map_err(|v| status::invalid_argument(&v))?;
        let id = &request.correlation_id;
        record_correlation_id(id);
        let body = convert::verify_status_request(&request);
        let call = async {
            let answer = self.prove.verify_status(&body, cx).await?;
            Ok(convert::verify_status_response(answer))
        };
        let answer = self
            .sessions
            .step(&caller, Step::VerifyStatus, id, call, is_final)
            .await?;
        Ok(Response::new(answer))
    }
}
