"""The Python client against a live gateway on the embedded simulator.

scripts/clients-test.sh starts one with mTLS and sets GATEWAY_ADDR (host:port), SIMULATOR_URL
and the PROVE_GATEWAY_CA_FILE / _CLIENT_CERT_FILE / _CLIENT_KEY_FILE the client connects with."""

import json
import os
import socket
import ssl
import urllib.request
import uuid

import grpc
import pytest

from prove.gateway.v1 import errors_pb2, types_pb2, unify_service_pb2, unify_service_pb2_grpc
from prove.gateway.v1 import verify_service_pb2, verify_service_pb2_grpc
from prove_client import (
    SIMULATED_HEADER,
    NotSimulated,
    SimulatedAnswer,
    assert_not_simulated,
    channel,
    channel_from_env,
    error_details,
    is_simulated,
)

TIMEOUT = 10  # seconds, the deadline of every call


def _env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"set {name} (scripts/clients-test.sh does)", pytrace=False)
    return value


@pytest.fixture(scope="session")
def gateway():
    with channel_from_env(_env("GATEWAY_ADDR")) as ch:
        yield ch


@pytest.fixture(scope="session")
def simulator():
    base = _env("SIMULATOR_URL")

    def call(method: str, path: str, body: dict) -> None:
        request = urllib.request.Request(
            base + path,
            data=json.dumps(body).encode(),
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            assert 200 <= response.status < 300, f"{method} {path}: HTTP {response.status}"

    return call


def test_unify_mobile_flow_succeeds(gateway, simulator):
    unify = unify_service_pb2_grpc.UnifyServiceStub(gateway)
    started = unify.Unify(
        unify_service_pb2.UnifyRequest(
            possession_type=types_pb2.POSSESSION_TYPE_MOBILE, phone_number="2001004014"
        ),
        timeout=TIMEOUT,
    )
    assert started.success == unify_service_pb2.UNIFY_OUTCOME_PENDING
    assert started.auth_token

    # What Prove's client SDK does on the phone: pass possession with the sandbox OTP.
    simulator(
        "POST",
        "/_simulator/possession",
        {"correlationId": started.correlation_id, "action": "otp", "otp": "1234"},
    )

    done = unify.UnifyStatus(
        unify_service_pb2.UnifyStatusRequest(correlation_id=started.correlation_id),
        timeout=TIMEOUT,
    )
    assert done.success == unify_service_pb2.UNIFY_OUTCOME_SUCCESS
    assert done.prove_id


def test_verify_customer_supplied_succeeds(gateway):
    verify = verify_service_pb2_grpc.VerifyServiceStub(gateway)
    response = verify.Verify(
        verify_service_pb2.VerifyRequest(
            possession_type=types_pb2.POSSESSION_TYPE_CUSTOMER_SUPPLIED,
            phone_number="2001004011",
            first_name="Tod",
            last_name="Weedall",
        ),
        timeout=TIMEOUT,
    )
    assert response.success == verify_service_pb2.VERIFY_OUTCOME_SUCCESS
    assert response.possession_result == types_pb2.CHECK_RESULT_NOT_APPLICABLE


def test_invalid_field_carries_bad_request(gateway):
    unify = unify_service_pb2_grpc.UnifyServiceStub(gateway)
    with pytest.raises(grpc.RpcError) as raised:
        # final_target_url is required for DESKTOP.
        unify.Unify(
            unify_service_pb2.UnifyRequest(
                possession_type=types_pb2.POSSESSION_TYPE_DESKTOP, phone_number="2001004014"
            ),
            timeout=TIMEOUT,
        )
    details = error_details(raised.value)
    assert details.code == grpc.StatusCode.INVALID_ARGUMENT
    assert details.error_info.reason == "INVALID_FIELD"
    assert details.error_info.domain == "prove-gateway"
    assert [v.field for v in details.bad_request.field_violations] == ["final_target_url"]
    assert details.prove_error is None  # Prove was not called


def test_unknown_correlation_id_carries_prove_error(gateway):
    unify = unify_service_pb2_grpc.UnifyServiceStub(gateway)
    with pytest.raises(grpc.RpcError) as raised:
        unify.UnifyStatus(
            unify_service_pb2.UnifyStatusRequest(correlation_id=str(uuid.uuid4())),
            timeout=TIMEOUT,
        )
    details = error_details(raised.value)
    assert details.code == grpc.StatusCode.FAILED_PRECONDITION
    assert details.error_info.reason == "INVALID_CORRELATION_ID"
    assert details.error_info.metadata["proveCode"] == "8008"
    assert details.prove_error.code == errors_pb2.PROVE_ERROR_CODE_INVALID_CORRELATION_ID
    assert details.prove_error.raw_code == 8008
    assert details.retry_info is None  # waiting does not help


def test_prove_outage_carries_retry_info(gateway, simulator):
    # Every Prove call answers 500/8000 until the faults are cleared again.
    simulator("PUT", "/_simulator/faults", {"errorRate": 1.0})
    try:
        unify = unify_service_pb2_grpc.UnifyServiceStub(gateway)
        with pytest.raises(grpc.RpcError) as raised:
            unify.Unify(
                unify_service_pb2.UnifyRequest(
                    possession_type=types_pb2.POSSESSION_TYPE_MOBILE, phone_number="2001004014"
                ),
                timeout=TIMEOUT,
            )
    finally:
        simulator("PUT", "/_simulator/faults", {})
    details = error_details(raised.value)
    assert details.code == grpc.StatusCode.UNAVAILABLE
    assert details.error_info.reason == "PROVE_INTERNAL_ERROR"
    assert details.error_info.domain == "proveapis.com"
    assert details.retry_info.retry_delay.ToTimedelta().total_seconds() > 0
    assert details.prove_error.raw_code == 8000


def test_connection_without_client_certificate_is_refused():
    if not os.environ.get("PROVE_GATEWAY_CLIENT_CERT_FILE"):
        pytest.skip("not an mTLS run: set PROVE_GATEWAY_CA_FILE, _CLIENT_CERT_FILE and _CLIENT_KEY_FILE")
    # The same CA, so the client trusts the gateway; but no certificate of its own.
    with channel(_env("GATEWAY_ADDR"), ca_file=_env("PROVE_GATEWAY_CA_FILE")) as anonymous:
        verify = verify_service_pb2_grpc.VerifyServiceStub(anonymous)
        with pytest.raises(grpc.RpcError) as raised:
            verify.Verify(
                verify_service_pb2.VerifyRequest(
                    possession_type=types_pb2.POSSESSION_TYPE_CUSTOMER_SUPPLIED,
                    phone_number="2001004011",
                    first_name="Tod",
                    last_name="Weedall",
                ),
                timeout=TIMEOUT,
            )
    # No gRPC status could be sent: the connection fails, so the call is UNAVAILABLE (a caller
    # refused after the handshake would get UNAUTHENTICATED instead).
    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE, raised.value

    # Why, one level down: the gateway ends the handshake with TLS's certificate_required
    # alert. With TLS 1.3 the client learns it on its first read; a gateway that let the
    # connection through would send its HTTP/2 SETTINGS there instead.
    host, port = _env("GATEWAY_ADDR").rsplit(":", 1)
    context = ssl.create_default_context(cafile=_env("PROVE_GATEWAY_CA_FILE"))
    context.set_alpn_protocols(["h2"])
    with socket.create_connection((host, int(port)), timeout=TIMEOUT) as sock:
        with pytest.raises(ssl.SSLError, match="CERTIFICATE_REQUIRED"):
            with context.wrap_socket(sock, server_hostname=host) as tls:
                tls.recv(1)


# The gateway clients-test.sh starts runs its embedded simulator, so the mark must be there: that
# proves the helpers read it where the gateway puts it. In production they find nothing.

MOBILE_UNIFY = unify_service_pb2.UnifyRequest(
    possession_type=types_pb2.POSSESSION_TYPE_MOBILE, phone_number="2001004014"
)


def test_simulated_mark_is_in_the_headers_of_a_successful_unify(gateway):
    unify = unify_service_pb2_grpc.UnifyServiceStub(gateway)
    _, call = unify.Unify.with_call(MOBILE_UNIFY, timeout=TIMEOUT)
    assert is_simulated(call.initial_metadata()), call.initial_metadata()
    with pytest.raises(SimulatedAnswer):
        assert_not_simulated(call)


def test_simulated_mark_is_in_the_trailers_of_a_failed_call(gateway):
    unify = unify_service_pb2_grpc.UnifyServiceStub(gateway)
    with pytest.raises(grpc.RpcError) as raised:
        unify.UnifyStatus(
            unify_service_pb2.UnifyStatusRequest(correlation_id=str(uuid.uuid4())), timeout=TIMEOUT
        )
    assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    # A trailers-only response: the mark travels with grpc-status.
    assert is_simulated(raised.value.trailing_metadata()), raised.value.trailing_metadata()
    with pytest.raises(SimulatedAnswer):
        assert_not_simulated(raised.value)


def test_not_simulated_refuses_the_simulators_answers(gateway):
    # What a production caller does, once, on its channel.
    guarded = grpc.intercept_channel(gateway, NotSimulated())
    unify = unify_service_pb2_grpc.UnifyServiceStub(guarded)
    with pytest.raises(SimulatedAnswer) as refused:
        unify.Unify(MOBILE_UNIFY, timeout=TIMEOUT)
    assert refused.value.cause is None
    assert "/prove.gateway.v1.UnifyService/Unify" in str(refused.value)

    # A failure is refused too, and keeps its own error as the cause.
    with pytest.raises(SimulatedAnswer) as refused:
        unify.UnifyStatus(
            unify_service_pb2.UnifyStatusRequest(correlation_id=str(uuid.uuid4())), timeout=TIMEOUT
        )
    assert refused.value.cause.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_details(refused.value.cause).error_info.reason == "INVALID_CORRELATION_ID"


def test_is_simulated_reads_only_the_mark():
    assert not is_simulated()
    assert not is_simulated(None, ())
    assert not is_simulated((("content-type", "application/grpc"),))
    assert not is_simulated(((SIMULATED_HEADER, "false"),))
    assert is_simulated((), ((SIMULATED_HEADER, "true"),))
    assert is_simulated(((SIMULATED_HEADER, "true"),), None)
