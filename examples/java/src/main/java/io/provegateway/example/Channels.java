package io.provegateway.example;

import io.grpc.ChannelCredentials;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.TlsChannelCredentials;
import java.io.File;
import java.io.IOException;

/**
 * Channels to prove-gateway: plaintext without a CA file, TLS with one, and mTLS when a client
 * certificate and key are given too (the gateway requires them when it runs with {@code
 * PROVE_GATEWAY_CLIENT_CA_FILE}). All files are PEM; the key must be PKCS#8 ({@code BEGIN PRIVATE
 * KEY}), which is what {@code openssl genpkey} and cert-manager ({@code privateKey.encoding:
 * PKCS8}) write.
 */
public final class Channels {
  private Channels() {}

  /**
   * A channel configured from {@code PROVE_GATEWAY_CA_FILE}, {@code PROVE_GATEWAY_CLIENT_CERT_FILE}
   * and {@code PROVE_GATEWAY_CLIENT_KEY_FILE}, the names every example client uses.
   */
  public static ManagedChannel fromEnv(String target) throws IOException {
    return forTarget(
        target,
        System.getenv("PROVE_GATEWAY_CA_FILE"),
        System.getenv("PROVE_GATEWAY_CLIENT_CERT_FILE"),
        System.getenv("PROVE_GATEWAY_CLIENT_KEY_FILE"));
  }

  /** A channel to {@code target} ("host:port"); null or empty file names are left out. */
  public static ManagedChannel forTarget(
      String target, String caFile, String certFile, String keyFile) throws IOException {
    return Grpc.newChannelBuilder(target, credentials(caFile, certFile, keyFile)).build();
  }

  static ChannelCredentials credentials(String caFile, String certFile, String keyFile)
      throws IOException {
    boolean hasCa = present(caFile);
    boolean hasCert = present(certFile);
    boolean hasKey = present(keyFile);
    if (!hasCa) {
      if (hasCert || hasKey) {
        throw new IllegalArgumentException(
            "a client certificate needs PROVE_GATEWAY_CA_FILE too: mTLS is TLS with a client certificate");
      }
      return InsecureChannelCredentials.create();
    }
    // The host name dialled must be in the gateway certificate's SANs (an IP SAN for an IP).
    TlsChannelCredentials.Builder tls =
        TlsChannelCredentials.newBuilder().trustManager(new File(caFile));
    if (hasCert || hasKey) {
      if (!(hasCert && hasKey)) {
        throw new IllegalArgumentException(
            "mTLS needs both PROVE_GATEWAY_CLIENT_CERT_FILE and PROVE_GATEWAY_CLIENT_KEY_FILE");
      }
      tls.keyManager(new File(certFile), new File(keyFile));
    }
    return tls.build();
  }

  private static boolean present(String name) {
    return name != null && !name.isEmpty();
  }
}
