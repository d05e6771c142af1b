//! Health and reflection over a real socket.

use prove_gateway::config::OutboundSettings;
use prove_gateway::simulator::SimulatorConfig;
use tokio_stream::StreamExt;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

use crate::helpers::{spawn_app, spawn_app_with};

#[tokio::test]
async fn health_answers_serving_for_the_server_and_each_service() {
    let app = spawn_app().await;
    let mut health = HealthClient::new(app.channel.clone());
    for service in [
        "",
        "prove.gateway.v1.UnifyService",
        "prove.gateway.v1.VerifyService",
    ] {
        let answer = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(answer.status(), ServingStatus::Serving, "{service:?}");
    }
}

#[tokio::test]
async fn reflection_lists_both_services_and_health() {
    let app = spawn_app().await;
    let mut reflection = ServerReflectionClient::new(app.channel.clone());
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers = reflection
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let Some(Ok(answer)) = answers.next().await else {
        panic!("no reflection answer")
    };
    let Some(MessageResponse::ListServicesResponse(list)) = answer.message_response else {
        panic!("unexpected reflection answer")
    };
    let names: Vec<_> = list.service.into_iter().map(|s| s.name).collect();
    for expected in [
        "prove.gateway.v1.UnifyService",
        "prove.gateway.v1.VerifyService",
        "grpc.health.v1.Health",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} in {names:?}"
        );
    }
}

/// Served file names for one reflection request.
async fn served_files(app: &crate::helpers::TestApp, request: MessageRequest) -> Vec<String> {
    use prost::Message;
    let mut reflection = ServerReflectionClient::new(app.channel.clone());
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(request),
    };
    let mut answers = reflection
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let Some(Ok(answer)) = answers.next().await else {
        panic!("no reflection answer")
    };
    let Some(MessageResponse::FileDescriptorResponse(files)) = answer.message_response else {
        panic!("unexpected reflection answer: {answer:?}")
    };
    files
        .file_descriptor_proto
        .iter()
        .map(|bytes| {
            prost_types::FileDescriptorProto::decode(bytes.as_slice())
                .unwrap()
                .name()
                .to_owned()
        })
        .collect()
}

#[tokio::test]
async fn reflection_serves_a_method_and_the_files_it_imports() {
    let app = spawn_app_with(SimulatorConfig::default(), OutboundSettings::default()).await;
    let files = served_files(
        &app,
        MessageRequest::FileContainingSymbol("prove.gateway.v1.UnifyService.UnifyStatus".into()),
    )
    .await;
    assert_eq!(files, ["prove/gateway/v1/unify_service.proto"]);
    // Clients then ask for each import by name; the `evaluation` Struct must resolve.
    for import in [
        "google/protobuf/struct.proto",
        "prove/gateway/v1/types.proto",
    ] {
        let files = served_files(&app, MessageRequest::FileByFilename(import.into())).await;
        assert_eq!(files, [import]);
    }
}
