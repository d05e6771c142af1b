//! The ceiling: a bare tonic server that answers every Unify with a fixed `UnifyResponse` (one
//! the gateway really returned) and calls nothing upstream.

use std::net::SocketAddr;

use prove_gateway::grpc::pb::unify_service_server::{UnifyService, UnifyServiceServer};
use prove_gateway::grpc::pb::{
    UnifyBindRequest, UnifyBindResponse, UnifyRequest, UnifyResponse, UnifyStatusRequest,
    UnifyStatusResponse,
};
use tokio::net::TcpListener;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};

struct Bare {
    answer: UnifyResponse,
}

#[tonic::async_trait]
impl UnifyService for Bare {
    async fn unify(&self, _: Request<UnifyRequest>) -> Result<Response<UnifyResponse>, Status> {
        Ok(Response::new(self.answer.clone()))
    }

    async fn unify_status(
        &self,
        _: Request<UnifyStatusRequest>,
    ) -> Result<Response<UnifyStatusResponse>, Status> {
        Err(Status::unimplemented("bare server: Unify only"))
    }

    async fn unify_bind(
        &self,
        _: Request<UnifyBindRequest>,
    ) -> Result<Response<UnifyBindResponse>, Status> {
        Err(Status::unimplemented("bare server: Unify only"))
    }
}

/// Serves the bare `UnifyService` on a loopback port (same TCP settings as the gateway) until
/// the runtime ends; returns its address.
pub async fn spawn(answer: UnifyResponse) -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    tokio::spawn(
        Server::builder()
            .add_service(UnifyServiceServer::new(Bare { answer }))
            .serve_with_incoming(incoming),
    );
    Ok(addr)
}
