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
