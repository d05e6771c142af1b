package io.provegateway.example;

import com.google.protobuf.Any;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.rpc.BadRequest;
import com.google.rpc.ErrorInfo;
import com.google.rpc.RequestInfo;
import com.google.rpc.RetryInfo;
import com.google.rpc.Status;
import io.grpc.protobuf.StatusProto;
import io.provegateway.v1.ProveError;
import java.util.Optional;

/**
 * The structured details of a failed prove-gateway call: always one {@link ErrorInfo}, and the
 * others when the gateway attached them. Read them with {@link #from(Throwable)}.
 */
public record ErrorDetails(
    io.grpc.Status.Code code,
    String message,
    Optional<ErrorInfo> errorInfo,
    Optional<RetryInfo> retryInfo,
    Optional<BadRequest> badRequest,
    Optional<RequestInfo> requestInfo,
    Optional<ProveError> proveError) {

  /** Unpacks the google.rpc.Status that the gateway puts in the grpc-status-details-bin trailer. */
  public static ErrorDetails from(Throwable error) {
    io.grpc.Status grpcStatus = io.grpc.Status.fromThrowable(error);
    Status status = StatusProto.fromThrowable(error); // null when no rich status was sent
    Iterable<Any> details = status == null ? java.util.List.of() : status.getDetailsList();
    ErrorInfo errorInfo = null;
    RetryInfo retryInfo = null;
    BadRequest badRequest = null;
    RequestInfo requestInfo = null;
    ProveError proveError = null;
    try {
      for (Any detail : details) {
        if (detail.is(ErrorInfo.class)) {
          errorInfo = detail.unpack(ErrorInfo.class);
        } else if (detail.is(RetryInfo.class)) {
          retryInfo = detail.unpack(RetryInfo.class);
        } else if (detail.is(BadRequest.class)) {
          badRequest = detail.unpack(BadRequest.class);
        } else if (detail.is(RequestInfo.class)) {
          requestInfo = detail.unpack(RequestInfo.class);
        } else if (detail.is(ProveError.class)) {
          proveError = detail.unpack(ProveError.class);
        }
      }
    } catch (InvalidProtocolBufferException e) {
      throw new IllegalStateException("malformed error detail from the gateway", e);
    }
    return new ErrorDetails(
        grpcStatus.getCode(),
        grpcStatus.getDescription(),
        Optional.ofNullable(errorInfo),
        Optional.ofNullable(retryInfo),
        Optional.ofNullable(badRequest),
        Optional.ofNullable(requestInfo),
        Optional.ofNullable(proveError));
  }
}
