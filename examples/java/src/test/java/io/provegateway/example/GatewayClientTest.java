package io.provegateway.example;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.google.rpc.BadRequest;
import io.grpc.ClientInterceptors;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.MetadataUtils;
import io.provegateway.v1.CheckResult;
import io.provegateway.v1.PossessionType;
import io.provegateway.v1.ProveErrorCode;
import io.provegateway.v1.UnifyOutcome;
import io.provegateway.v1.UnifyRequest;
import io.provegateway.v1.UnifyResponse;
import io.provegateway.v1.UnifyServiceGrpc;
import io.provegateway.v1.UnifyServiceGrpc.UnifyServiceBlockingStub;
import io.provegateway.v1.UnifyStatusRequest;
import io.provegateway.v1.UnifyStatusResponse;
import io.provegateway.v1.VerifyOutcome;
import io.provegateway.v1.VerifyRequest;
import io.provegateway.v1.VerifyResponse;
import io.provegateway.v1.VerifyServiceGrpc;
import java.io.InputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyStore;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.util.UUID;
import java.util.concurrent.atomic.AtomicReference;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLException;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.TrustManagerFactory;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The Java client against a live gateway on the embedded simulator. scripts/clients-test.sh
 * starts one with mTLS and sets GATEWAY_ADDR (host:port), SIMULATOR_URL (http://host:port) and
 * the PROVE_GATEWAY_CA_FILE / _CLIENT_CERT_FILE / _CLIENT_KEY_FILE the client connects with.
 */
class GatewayClientTest {
  private static ManagedChannel channel;
  private static String gatewayAddr;
  private static String simulatorUrl;
  private static final HttpClient http = HttpClient.newHttpClient();

  @BeforeAll
  static void connect() throws Exception {
    gatewayAddr = requiredEnv("GATEWAY_ADDR");
    simulatorUrl = requiredEnv("SIMULATOR_URL");
    channel = Channels.fromEnv(gatewayAddr);
  }

  @AfterAll
  static void close() throws InterruptedException {
    channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
  }

  private static String requiredEnv(String name) {
    String value = System.getenv(name);
    if (value == null || value.isEmpty()) {
      throw new IllegalStateException("set " + name + " (scripts/clients-test.sh does)");
    }
    return value;
  }

  private static UnifyServiceBlockingStub unify() {
    return UnifyServiceGrpc.newBlockingStub(channel).withDeadlineAfter(10, TimeUnit.SECONDS);
  }

  /** Sends a JSON body to one of the simulator's control endpoints. */
  private static void simulator(String method, String path, String json) throws Exception {
    HttpRequest request =
        HttpRequest.newBuilder(URI.create(simulatorUrl + path))
            .header("Content-Type", "application/json")
            .method(method, HttpRequest.BodyPublishers.ofString(json))
            .build();
    int code = http.send(request, HttpResponse.BodyHandlers.discarding()).statusCode();
    assertTrue(code / 100 == 2, method + " " + path + ": HTTP " + code);
  }

  @Test
  void unifyMobileFlowSucceeds() throws Exception {
    UnifyResponse started =
        unify()
            .unify(
                UnifyRequest.newBuilder()
                    .setPossessionType(PossessionType.POSSESSION_TYPE_MOBILE)
                    .setPhoneNumber("2001004014")
                    .build());
    assertEquals(UnifyOutcome.UNIFY_OUTCOME_PENDING, started.getSuccess());
    assertFalse(started.getAuthToken().isEmpty());

    // What Prove's client SDK does on the phone: pass possession with the sandbox OTP.
    simulator(
        "POST",
        "/_simulator/possession",
        "{\"correlationId\":\"" + started.getCorrelationId() + "\",\"action\":\"otp\",\"otp\":\"1234\"}");

    UnifyStatusResponse done =
        unify()
            .unifyStatus(
                UnifyStatusRequest.newBuilder()
                    .setCorrelationId(started.getCorrelationId())
                    .build());
    assertEquals(UnifyOutcome.UNIFY_OUTCOME_SUCCESS, done.getSuccess());
    assertFalse(done.getProveId().isEmpty());
  }

  @Test
  void verifyCustomerSuppliedSucceeds() {
    VerifyResponse response =
        VerifyServiceGrpc.newBlockingStub(channel)
            .withDeadlineAfter(10, TimeUnit.SECONDS)
            .verify(
                VerifyRequest.newBuilder()
                    .setPossessionType(PossessionType.POSSESSION_TYPE_CUSTOMER_SUPPLIED)
                    .setPhoneNumber("2001004011")
                    .setFirstName("Tod")
                    .setLastName("Weedall")
                    .build());
    assertEquals(VerifyOutcome.VERIFY_OUTCOME_SUCCESS, response.getSuccess());
    assertEquals(CheckResult.CHECK_RESULT_NOT_APPLICABLE, response.getPossessionResult());
  }

  @Test
  void invalidFieldCarriesBadRequest() {
    StatusRuntimeException error =
        assertThrows(
            StatusRuntimeException.class,
            () ->
                unify()
                    .unify(
                        UnifyRequest.newBuilder() // final_target_url is required for DESKTOP
                            .setPossessionType(PossessionType.POSSESSION_TYPE_DESKTOP)
                            .setPhoneNumber("2001004014")
                            .build()));
    ErrorDetails details = ErrorDetails.from(error);
    assertEquals(Status.Code.INVALID_ARGUMENT, details.code());
    assertEquals("INVALID_FIELD", details.errorInfo().orElseThrow().getReason());
    assertEquals("prove-gateway", details.errorInfo().orElseThrow().getDomain());
    BadRequest badRequest = details.badRequest().orElseThrow();
    assertEquals(1, badRequest.getFieldViolationsCount());
    assertEquals("final_target_url", badRequest.getFieldViolations(0).getField());
    assertTrue(details.proveError().isEmpty(), "Prove was not called");
  }

  @Test
  void unknownCorrelationIdCarriesProveError() {
    StatusRuntimeException error =
        assertThrows(
            StatusRuntimeException.class,
            () ->
                unify()
                    .unifyStatus(
                        UnifyStatusRequest.newBuilder()
                            .setCorrelationId(UUID.randomUUID().toString())
                            .build()));
    ErrorDetails details = ErrorDetails.from(error);
    assertEquals(Status.Code.FAILED_PRECONDITION, details.code());
    assertEquals("INVALID_CORRELATION_ID", details.errorInfo().orElseThrow().getReason());
    assertEquals("8008", details.errorInfo().orElseThrow().getMetadataOrThrow("proveCode"));
    assertEquals(
        ProveErrorCode.PROVE_ERROR_CODE_INVALID_CORRELATION_ID,
        details.proveError().orElseThrow().getCode());
    assertEquals(8008, details.proveError().orElseThrow().getRawCode());
    assertTrue(details.retryInfo().isEmpty(), "waiting does not help");
  }

  @Test
  void proveOutageCarriesRetryInfo() throws Exception {
    // Every Prove call answers 500/8000 until the faults are cleared again.
    simulator("PUT", "/_simulator/faults", "{\"errorRate\":1.0}");
    StatusRuntimeException error;
    try {
      error =
          assertThrows(
              StatusRuntimeException.class,
              () ->
                  unify()
                      .unify(
                          UnifyRequest.newBuilder()
                              .setPossessionType(PossessionType.POSSESSION_TYPE_MOBILE)
                              .setPhoneNumber("2001004014")
                              .build()));
    } finally {
      simulator("PUT", "/_simulator/faults", "{}");
    }
    ErrorDetails details = ErrorDetails.from(error);
    assertEquals(Status.Code.UNAVAILABLE, details.code());
    assertEquals("PROVE_INTERNAL_ERROR", details.errorInfo().orElseThrow().getReason());
    assertEquals("proveapis.com", details.errorInfo().orElseThrow().getDomain());
    com.google.protobuf.Duration delay = details.retryInfo().orElseThrow().getRetryDelay();
    assertTrue(delay.getSeconds() > 0 || delay.getNanos() > 0, "retry_delay is positive");
    assertEquals(8000, details.proveError().orElseThrow().getRawCode());
  }

  @Test
  void connectionWithoutClientCertificateIsRefused() throws Exception {
    String caFile = System.getenv("PROVE_GATEWAY_CA_FILE");
    assumeTrue(
        System.getenv("PROVE_GATEWAY_CLIENT_CERT_FILE") != null,
        "not an mTLS run: set PROVE_GATEWAY_CA_FILE, _CLIENT_CERT_FILE and _CLIENT_KEY_FILE");
    // The same CA, so the client trusts the gateway; but no certificate of its own.
    ManagedChannel anonymous = Channels.forTarget(gatewayAddr, caFile, null, null);
    try {
      StatusRuntimeException error =
          assertThrows(
              StatusRuntimeException.class,
              () ->
                  VerifyServiceGrpc.newBlockingStub(anonymous)
                      .withDeadlineAfter(10, TimeUnit.SECONDS)
                      .verify(
                          VerifyRequest.newBuilder()
                              .setPossessionType(PossessionType.POSSESSION_TYPE_CUSTOMER_SUPPLIED)
                              .setPhoneNumber("2001004011")
                              .setFirstName("Tod")
                              .setLastName("Weedall")
                              .build()));
      // No gRPC status could be sent: the connection fails, so the call is UNAVAILABLE (a
      // caller refused after the handshake would get UNAUTHENTICATED instead).
      assertEquals(Status.Code.UNAVAILABLE, error.getStatus().getCode(), error.toString());
    } finally {
      anonymous.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }

    // Why, one level down: the gateway ends the handshake with TLS's certificate_required
    // alert. With TLS 1.3 the client learns it on its first read; a gateway that let the
    // connection through would send its HTTP/2 SETTINGS there instead.
    int colon = gatewayAddr.lastIndexOf(':');
    String host = gatewayAddr.substring(0, colon);
    int port = Integer.parseInt(gatewayAddr.substring(colon + 1));
    try (SSLSocket socket =
        (SSLSocket) trusting(caFile).getSocketFactory().createSocket(host, port)) {
      socket.setSoTimeout(10_000);
      SSLParameters parameters = socket.getSSLParameters();
      parameters.setApplicationProtocols(new String[] {"h2"});
      parameters.setEndpointIdentificationAlgorithm("HTTPS");
      socket.setSSLParameters(parameters);
      SSLException refused =
          assertThrows(
              SSLException.class,
              () -> {
                socket.startHandshake();
                socket.getInputStream().read();
              });
      assertTrue(refused.getMessage().contains("certificate_required"), refused.toString());
    }
  }

  // The gateway clients-test.sh starts runs its embedded simulator, so the mark must be there:
  // that proves Simulated reads it where the gateway puts it. In production it finds nothing.

  private static UnifyRequest mobileUnify() {
    return UnifyRequest.newBuilder()
        .setPossessionType(PossessionType.POSSESSION_TYPE_MOBILE)
        .setPhoneNumber("2001004014")
        .build();
  }

  @Test
  void simulatedMarkIsInTheHeadersOfASuccessfulUnify() {
    AtomicReference<Metadata> headers = new AtomicReference<>();
    AtomicReference<Metadata> trailers = new AtomicReference<>();
    unify()
        .withInterceptors(MetadataUtils.newCaptureMetadataInterceptor(headers, trailers))
        .unify(mobileUnify());
    assertTrue(Simulated.isSimulated(headers.get()), "headers: " + headers.get());
  }

  @Test
  void simulatedMarkIsInTheTrailersOfAFailedCall() {
    AtomicReference<Metadata> headers = new AtomicReference<>();
    AtomicReference<Metadata> trailers = new AtomicReference<>();
    StatusRuntimeException error =
        assertThrows(
            StatusRuntimeException.class,
            () ->
                unify()
                    .withInterceptors(MetadataUtils.newCaptureMetadataInterceptor(headers, trailers))
                    .unifyStatus(
                        UnifyStatusRequest.newBuilder()
                            .setCorrelationId(UUID.randomUUID().toString())
                            .build()));
    assertEquals(Status.Code.FAILED_PRECONDITION, error.getStatus().getCode());
    // A trailers-only response: the mark travels with grpc-status.
    assertTrue(Simulated.isSimulated(trailers.get()), "trailers: " + trailers.get());
  }

  @Test
  void refuseTurnsTheSimulatorsAnswersIntoErrors() {
    // What a production caller does, once, on its channel.
    UnifyServiceBlockingStub guarded =
        UnifyServiceGrpc.newBlockingStub(ClientInterceptors.intercept(channel, Simulated.refuse()))
            .withDeadlineAfter(10, TimeUnit.SECONDS);
    StatusRuntimeException refused =
        assertThrows(StatusRuntimeException.class, () -> guarded.unify(mobileUnify()));
    assertEquals(Status.Code.FAILED_PRECONDITION, refused.getStatus().getCode());
    assertTrue(refused.getStatus().getDescription().contains("simulator"), refused.toString());

    // A failure is refused too, and keeps its own status as the cause.
    StatusRuntimeException failed =
        assertThrows(
            StatusRuntimeException.class,
            () ->
                guarded.unifyStatus(
                    UnifyStatusRequest.newBuilder()
                        .setCorrelationId(UUID.randomUUID().toString())
                        .build()));
    assertTrue(failed.getStatus().getDescription().contains("simulator"), failed.toString());
    assertEquals(
        Status.Code.FAILED_PRECONDITION,
        Status.fromThrowable(failed.getStatus().getCause()).getCode());
    assertEquals(
        "INVALID_CORRELATION_ID",
        ErrorDetails.from(failed.getStatus().getCause()).errorInfo().orElseThrow().getReason());
  }

  @Test
  void isSimulatedReadsOnlyTheMark() {
    Metadata none = new Metadata();
    Metadata off = new Metadata();
    off.put(Simulated.HEADER, "false");
    Metadata on = new Metadata();
    on.put(Simulated.HEADER, "true");
    assertFalse(Simulated.isSimulated());
    assertFalse(Simulated.isSimulated(none, null));
    assertFalse(Simulated.isSimulated(off));
    assertTrue(Simulated.isSimulated(none, on));
    assertTrue(Simulated.isSimulated(on, null));
  }

  /** A TLS context that trusts only the CA certificates in {@code caFile} (PEM). */
  private static SSLContext trusting(String caFile) throws Exception {
    KeyStore roots = KeyStore.getInstance(KeyStore.getDefaultType());
    roots.load(null, null);
    try (InputStream pem = Files.newInputStream(Path.of(caFile))) {
      int i = 0;
      for (Certificate ca : CertificateFactory.getInstance("X.509").generateCertificates(pem)) {
        roots.setCertificateEntry("ca-" + i++, ca);
      }
    }
    TrustManagerFactory trust =
        TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
    trust.init(roots);
    SSLContext context = SSLContext.getInstance("TLS");
    context.init(null, trust.getTrustManagers(), null);
    return context;
  }
}
