//! A bare HTTP/2 client, for what tonic's client will not do: send bytes that are not the request
//! message, send a `grpc-timeout` without enforcing it itself, or leave a stream half-sent.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;

use bytes::{BufMut, Bytes, BytesMut};
use h2::client::SendRequest;
use prost::Message;
use tokio::net::TcpStream;

/// The Unify RPC's path.
pub const UNIFY: &str = "/prove.gateway.v1.UnifyService/Unify";

/// An HTTP/2 connection to `addr`; its driver runs on a task of its own, whose handle says when
/// the server closed the connection.
pub async fn connect(addr: SocketAddr) -> (SendRequest<Bytes>, tokio::task::JoinHandle<()>) {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (client, connection) = h2::client::handshake(tcp).await.unwrap();
    let driver = tokio::spawn(async move {
        let _ = connection.await;
    });
    (client, driver)
}

/// A gRPC request for `path` with extra `headers`.
pub fn request(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> http::Request<()> {
    let mut builder = http::Request::builder()
        .method("POST")
        .uri(format!("http://{addr}{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers");
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(()).unwrap()
}

/// `payload` as one gRPC message: no compression, its length, the bytes.
pub fn frame(payload: &[u8]) -> Bytes {
    let mut framed = BytesMut::with_capacity(payload.len() + 5);
    framed.put_u8(0);
    framed.put_u32(u32::try_from(payload.len()).unwrap());
    framed.put_slice(payload);
    framed.freeze()
}

/// Sends `body` as the whole request body on a fresh connection and reads the answer's status:
/// from the headers of a trailers-only answer, else from the trailers.
pub async fn call(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    body: Bytes,
) -> tonic::Status {
    let (client, _driver) = connect(addr).await;
    let mut client = client.ready().await.unwrap();
    let (answer, mut send) = client
        .send_request(request(addr, path, headers), false)
        .unwrap();
    send.send_data(body, true).unwrap();
    status_of(answer).await
}

/// The gRPC status of an answer.
pub async fn status_of(answer: h2::client::ResponseFuture) -> tonic::Status {
    let (parts, mut body) = answer.await.unwrap().into_parts();
    if let Some(status) = tonic::Status::from_header_map(&parts.headers) {
        return status;
    }
    while let Some(chunk) = body.data().await {
        let chunk = chunk.unwrap();
        let _ = body.flow_control().release_capacity(chunk.len());
    }
    let trailers = body
        .trailers()
        .await
        .unwrap()
        .expect("an answer without status headers has trailers");
    tonic::Status::from_header_map(&trailers).expect("the trailers carry grpc-status")
}

/// Every `google.rpc.ErrorInfo` among the status's details.
pub fn error_infos(status: &tonic::Status) -> Vec<tonic_types::pb::ErrorInfo> {
    let details = tonic_types::pb::Status::decode(status.details()).unwrap_or_default();
    details
        .details
        .iter()
        .filter(|any| any.type_url == "type.googleapis.com/google.rpc.ErrorInfo")
        .map(|any| tonic_types::pb::ErrorInfo::decode(any.value.as_slice()).unwrap())
        .collect()
}

/// Asserts the status's code and that it carries exactly one ErrorInfo, of the gateway, with
/// `reason`.
pub fn assert_gateway_error(status: &tonic::Status, code: tonic::Code, reason: &str) {
    assert_eq!(status.code(), code, "{status:?}");
    let infos = error_infos(status);
    assert_eq!(infos.len(), 1, "exactly one ErrorInfo: {status:?}");
    assert_eq!(infos[0].reason, reason, "{status:?}");
    assert_eq!(infos[0].domain, "prove-gateway");
}
