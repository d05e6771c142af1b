"""A small Python client of prove-gateway: a channel to the gateway and the structured details
of a failed call, unpacked from the google.rpc.Status in the call's trailers."""

from dataclasses import dataclass
from typing import Optional

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from prove.gateway.v1 import errors_pb2


def channel(address: str) -> grpc.Channel:
    """An insecure channel to the gateway at "host:port", as on loopback. In production use
    grpc.secure_channel with grpc.ssl_channel_credentials()."""
    return grpc.insecure_channel(address)


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
