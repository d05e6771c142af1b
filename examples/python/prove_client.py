"""A small Python client of prove-gateway: a channel to the gateway (plaintext, TLS or mTLS) and
the structured details of a failed call, unpacked from the google.rpc.Status in the call's
trailers."""

import os
from dataclasses import dataclass
from typing import Optional

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from prove.gateway.v1 import errors_pb2


def channel(
    address: str,
    ca_file: Optional[str] = None,
    cert_file: Optional[str] = None,
    key_file: Optional[str] = None,
) -> grpc.Channel:
    """A channel to the gateway at "host:port": plaintext without a CA file, TLS with one, and
    mTLS when a client certificate and key (PEM) are given too, as the gateway requires when it
    runs with PROVE_GATEWAY_CLIENT_CA_FILE. The host name dialled must be in the gateway
    certificate's SANs (an IP SAN for an IP)."""
    if not ca_file:
        if cert_file or key_file:
            raise ValueError("a client certificate needs a CA file too: mTLS is TLS with a client certificate")
        return grpc.insecure_channel(address)
    if bool(cert_file) != bool(key_file):
        raise ValueError("mTLS needs both the client certificate and its key")

    def read(path: Optional[str]) -> Optional[bytes]:
        if not path:
            return None
        with open(path, "rb") as f:
            return f.read()

    credentials = grpc.ssl_channel_credentials(
        root_certificates=read(ca_file),
        private_key=read(key_file),
        certificate_chain=read(cert_file),
    )
    return grpc.secure_channel(address, credentials)


def channel_from_env(address: str) -> grpc.Channel:
    """channel() with the files named by PROVE_GATEWAY_CA_FILE, PROVE_GATEWAY_CLIENT_CERT_FILE
    and PROVE_GATEWAY_CLIENT_KEY_FILE, the names every example client uses."""
    return channel(
        address,
        ca_file=os.environ.get("PROVE_GATEWAY_CA_FILE"),
        cert_file=os.environ.get("PROVE_GATEWAY_CLIENT_CERT_FILE"),
        key_file=os.environ.get("PROVE_GATEWAY_CLIENT_KEY_FILE"),
    )


@dataclass
class ErrorDetails:
    """The details of a failed RPC: always one ErrorInfo, the others when the gateway sent them."""

    code: grpc.StatusCode
    message: str
    error_info: Optional[error_details_pb2.ErrorInfo] = None
    retry_info: Optional[error_details_pb2.RetryInfo] = None
    bad_request: Optional[error_details_pb2.BadRequest] = None
    request_info: Optional[error_details_pb2.RequestInfo] = None
    prove_error: Optional[errors_pb2.ProveError] = None


_DETAIL_TYPES = {
    "error_info": error_details_pb2.ErrorInfo,
    "retry_info": error_details_pb2.RetryInfo,
    "bad_request": error_details_pb2.BadRequest,
    "request_info": error_details_pb2.RequestInfo,
    "prove_error": errors_pb2.ProveError,
}


def error_details(error: grpc.RpcError) -> ErrorDetails:
    """Unpacks the google.rpc.Status that the gateway puts in `grpc-status-details-bin`."""
    result = ErrorDetails(code=error.code(), message=error.details())
    status = rpc_status.from_call(error)  # None when the server sent no rich status
    if status is None:
        return result
    for detail in status.details:
        for field, message_type in _DETAIL_TYPES.items():
            if detail.Is(message_type.DESCRIPTOR):
                message = message_type()
                detail.Unpack(message)
                setattr(result, field, message)
    return result


# --- The simulator's mark -----------------------------------------------------------------------
# A gateway answering from its embedded Prove simulator marks every answer of its services with
# `prove-gateway-simulated: true`: in the response headers on success, in the trailers of a failed
# call (a trailers-only response). Such an answer verified nobody, so production callers refuse it.

SIMULATED_HEADER = "prove-gateway-simulated"


class SimulatedAnswer(RuntimeError):
    """The gateway answered from its embedded simulator: no person was verified. `cause` is the
    call's own error when it failed, else None."""

    def __init__(self, method: str, cause: Optional[grpc.RpcError] = None):
        super().__init__(
            f"{method} was answered by prove-gateway's embedded simulator "
            f"({SIMULATED_HEADER}: true): no person was verified; the gateway lacks PROVE_BASE_URL"
        )
        self.cause = cause


def is_simulated(*metadata) -> bool:
    """Whether any of the given metadata (a call's initial_metadata() and trailing_metadata(),
    sequences of (key, value); None is skipped) carries `prove-gateway-simulated: true`."""
    return any(
        key == SIMULATED_HEADER and str(value).strip().lower() == "true"
        for md in metadata
        if md
        for key, value in md
    )


def assert_not_simulated(call) -> None:
    """Raises SimulatedAnswer when `call` (the grpc.Call of `stub.Method.with_call(...)`, or a
    grpc.RpcError, which is one) was answered by the simulator."""
    if is_simulated(call.initial_metadata(), call.trailing_metadata()):
        raise SimulatedAnswer("the call", call if isinstance(call, grpc.RpcError) else None)


class NotSimulated(grpc.UnaryUnaryClientInterceptor):
    """A client interceptor for production: every call whose answer carries the simulator's mark
    raises SimulatedAnswer instead of returning it (or raising its own RpcError, kept as `cause`),
    so a gateway deployed without Prove cannot tell this caller that someone was verified. Install
    it once: `grpc.intercept_channel(channel_from_env(address), NotSimulated())`."""

    def intercept_unary_unary(self, continuation, client_call_details, request):
        call = continuation(client_call_details, request)
        # Blocks until the call is done: headers and trailers are both known then.
        error = call.exception()
        if is_simulated(call.initial_metadata(), call.trailing_metadata()):
            raise SimulatedAnswer(client_call_details.method, error)
        return call
