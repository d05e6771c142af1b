package example

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// TLSFiles names the PEM files of a connection to the gateway. An empty CAFile means
// plaintext, as on loopback; CertFile and KeyFile add a client certificate (mTLS), which the
// gateway requires when it runs with PROVE_GATEWAY_CLIENT_CA_FILE.
type TLSFiles struct {
	// CAFile holds the CA certificates the gateway's server certificate must chain to.
	CAFile string
	// CertFile holds this client's certificate chain, leaf first.
	CertFile string
	// KeyFile holds the private key of CertFile's leaf (PKCS#8, PKCS#1 or SEC 1 PEM).
	KeyFile string
}

// TLSFilesFromEnv reads PROVE_GATEWAY_CA_FILE, PROVE_GATEWAY_CLIENT_CERT_FILE and
// PROVE_GATEWAY_CLIENT_KEY_FILE, the names every example client uses.
func TLSFilesFromEnv() TLSFiles {
	return TLSFiles{
		CAFile:   os.Getenv("PROVE_GATEWAY_CA_FILE"),
		CertFile: os.Getenv("PROVE_GATEWAY_CLIENT_CERT_FILE"),
		KeyFile:  os.Getenv("PROVE_GATEWAY_CLIENT_KEY_FILE"),
	}
}

// Credentials builds the transport credentials the files describe.
func (f TLSFiles) Credentials() (credentials.TransportCredentials, error) {
	if f.CAFile == "" {
		if f.CertFile != "" || f.KeyFile != "" {
			return nil, errors.New("a client certificate needs PROVE_GATEWAY_CA_FILE too: mTLS is TLS with a client certificate")
		}
		return insecure.NewCredentials(), nil
	}
	cfg, err := f.Config()
	if err != nil {
		return nil, err
	}
	return credentials.NewTLS(cfg), nil
}

// Config is the TLS client configuration of a non-empty CAFile: the CA as the only root, and
// the client certificate when CertFile and KeyFile are set.
func (f TLSFiles) Config() (*tls.Config, error) {
	pem, err := os.ReadFile(f.CAFile)
	if err != nil {
		return nil, fmt.Errorf("reading the CA file: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("no PEM certificate in %s", f.CAFile)
	}
	// The gateway (rustls) speaks TLS 1.2 and 1.3; the dialled host name must be in the
	// server certificate's SANs.
	cfg := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	if f.CertFile != "" || f.KeyFile != "" {
		if f.CertFile == "" || f.KeyFile == "" {
			return nil, errors.New("mTLS needs both PROVE_GATEWAY_CLIENT_CERT_FILE and PROVE_GATEWAY_CLIENT_KEY_FILE")
		}
		cert, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("loading the client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}
