package io.provegateway.example;

import io.grpc.CallOptions;
import io.grpc.Channel;
import io.grpc.ClientCall;
import io.grpc.ClientInterceptor;
import io.grpc.ForwardingClientCall.SimpleForwardingClientCall;
import io.grpc.ForwardingClientCallListener.SimpleForwardingClientCallListener;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.Status;

/**
 * The mark of a gateway answering from its embedded Prove simulator: every answer of its services
 * carries the metadata {@code prove-gateway-simulated: true}, in the response headers on success
 * and in the trailers of a failed call. Such an answer verified nobody, so a production caller
 * refuses it: install {@link #refuse()} on its channel, or test the metadata with {@link
 * #isSimulated(Metadata...)}.
 */
public final class Simulated {
  private Simulated() {}

  /** The metadata key of the mark. */
  public static final Metadata.Key<String> HEADER =
      Metadata.Key.of("prove-gateway-simulated", Metadata.ASCII_STRING_MARSHALLER);

  /**
   * Whether any of the given response headers or trailers carries {@code
   * prove-gateway-simulated: true}. Pass both: a failed call (a trailers-only response) has the
   * mark in its trailers.
   */
  public static boolean isSimulated(Metadata... metadata) {
    for (Metadata md : metadata) {
      if (md == null) {
        continue;
      }
      Iterable<String> values = md.getAll(HEADER);
      if (values == null) {
        continue;
      }
      for (String value : values) {
        if ("true".equalsIgnoreCase(value.trim())) {
          return true;
        }
      }
    }
    return false;
  }

  /**
   * A client interceptor for production: a call whose answer carries the mark fails with {@code
   * FAILED_PRECONDITION} ("answered by the gateway's embedded simulator") instead of returning it,
   * so a gateway deployed without Prove cannot tell this caller that someone was verified. A
   * failed call keeps its own status as the cause. For unary calls, which all of the gateway's
   * methods are: the answer is held until the trailers arrive. Install it once:
   *
   * <pre>{@code
   * Channel channel = ClientInterceptors.intercept(Channels.fromEnv(target), Simulated.refuse());
   * }</pre>
   */
  public static ClientInterceptor refuse() {
    return new ClientInterceptor() {
      @Override
      public <Q, R> ClientCall<Q, R> interceptCall(
          MethodDescriptor<Q, R> method, CallOptions options, Channel next) {
        return new SimpleForwardingClientCall<>(next.newCall(method, options)) {
          @Override
          public void start(Listener<R> listener, Metadata headers) {
            super.start(new Guard<>(listener, method.getFullMethodName()), headers);
          }
        };
      }
    };
  }

  /**
   * Holds back the answer until the call closes: only then are both the headers and the trailers
   * known, and the answer is either delivered or replaced by the refusal.
   */
  private static final class Guard<R> extends SimpleForwardingClientCallListener<R> {
    private final String method;
    private Metadata headers;
    private R message;

    Guard(ClientCall.Listener<R> delegate, String method) {
      super(delegate);
      this.method = method;
    }

    @Override
    public void onHeaders(Metadata headers) {
      this.headers = headers;
      super.onHeaders(headers);
    }

    @Override
    public void onMessage(R message) {
      // Unary: one message. Kept until onClose decides whether the caller may see it.
      this.message = message;
    }

    @Override
    public void onClose(Status status, Metadata trailers) {
      if (isSimulated(headers, trailers)) {
        Status refused =
            Status.FAILED_PRECONDITION.withDescription(
                method
                    + " was answered by prove-gateway's embedded simulator"
                    + " (prove-gateway-simulated: true): no person was verified;"
                    + " the gateway lacks PROVE_BASE_URL");
        if (!status.isOk()) {
          refused = refused.withCause(status.asRuntimeException(trailers));
        }
        super.onClose(refused, new Metadata());
        return;
      }
      if (message != null) {
        super.onMessage(message);
      }
      super.onClose(status, trailers);
    }
  }
}
