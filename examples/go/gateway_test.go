package example

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	gatewayv1 "github.com/prove-gateway/prove-gateway/gen/go/prove/gateway/v1"
)

// These tests run against a live gateway on the embedded simulator; scripts/clients-test.sh
// starts one with mTLS and sets GATEWAY_ADDR (host:port), SIMULATOR_URL (http://host:port)
// and the PROVE_GATEWAY_CA_FILE / _CLIENT_CERT_FILE / _CLIENT_KEY_FILE the client connects with.
var (
	conn         *grpc.ClientConn
	gatewayAddr  string
	simulatorURL string
)

func TestMain(m *testing.M) {
	gatewayAddr = os.Getenv("GATEWAY_ADDR")
	simulatorURL = os.Getenv("SIMULATOR_URL")
	if gatewayAddr == "" || simulatorURL == "" {
		fmt.Fprintln(os.Stderr, "set GATEWAY_ADDR and SIMULATOR_URL (scripts/clients-test.sh does)")
		os.Exit(1)
	}
	var err error
	if conn, err = Dial(gatewayAddr, TLSFilesFromEnv()); err != nil {
		fmt.Fprintln(os.Stderr, "dial:", err)
		os.Exit(1)
	}
	code := m.Run()
	conn.Close()
	os.Exit(code)
}

func callCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// simulator POSTs body to one of the simulator's control endpoints.
func simulator(t *testing.T, method, path string, body any) {
	t.Helper()
	raw, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, simulatorURL+path, bytes.NewReader(raw))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("%s %s: HTTP %d", method, path, resp.StatusCode)
	}
}

func TestUnifyMobileFlowSucceeds(t *testing.T) {
	unify := gatewayv1.NewUnifyServiceClient(conn)

	started, err := unify.Unify(callCtx(t), &gatewayv1.UnifyRequest{
		PossessionType: gatewayv1.PossessionType_POSSESSION_TYPE_MOBILE,
		PhoneNumber:    "2001004014",
	})
	if err != nil {
		t.Fatalf("Unify: %v", err)
	}
	if started.GetSuccess() != gatewayv1.UnifyOutcome_UNIFY_OUTCOME_PENDING || started.GetAuthToken() == "" {
		t.Fatalf("Unify = %v, want PENDING with an auth token", started.GetSuccess())
	}

	// What Prove's client SDK does on the phone: pass possession with the sandbox OTP.
	simulator(t, http.MethodPost, "/_simulator/possession", map[string]string{
		"correlationId": started.GetCorrelationId(), "action": "otp", "otp": "1234",
	})

	done, err := unify.UnifyStatus(callCtx(t), &gatewayv1.UnifyStatusRequest{
		CorrelationId: started.GetCorrelationId(),
	})
	if err != nil {
		t.Fatalf("UnifyStatus: %v", err)
	}
	if done.GetSuccess() != gatewayv1.UnifyOutcome_UNIFY_OUTCOME_SUCCESS || done.GetProveId() == "" {
		t.Fatalf("UnifyStatus = %v (prove_id %q), want SUCCESS with a prove_id", done.GetSuccess(), done.GetProveId())
	}
}

func TestVerifyCustomerSuppliedSucceeds(t *testing.T) {
	verify := gatewayv1.NewVerifyServiceClient(conn)
	resp, err := verify.Verify(callCtx(t), &gatewayv1.VerifyRequest{
		PossessionType: gatewayv1.PossessionType_POSSESSION_TYPE_CUSTOMER_SUPPLIED,
		PhoneNumber:    "2001004011",
		FirstName:      "Tod",
		LastName:       "Weedall",
	})
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if resp.GetSuccess() != gatewayv1.VerifyOutcome_VERIFY_OUTCOME_SUCCESS {
		t.Errorf("success = %v, want SUCCESS", resp.GetSuccess())
	}
	if resp.GetPossessionResult() != gatewayv1.CheckResult_CHECK_RESULT_NOT_APPLICABLE {
		t.Errorf("possession_result = %v, want NOT_APPLICABLE", resp.GetPossessionResult())
	}
}

func TestInvalidFieldCarriesBadRequest(t *testing.T) {
	_, err := gatewayv1.NewUnifyServiceClient(conn).Unify(callCtx(t), &gatewayv1.UnifyRequest{
		PossessionType: gatewayv1.PossessionType_POSSESSION_TYPE_DESKTOP,
		PhoneNumber:    "2001004014",
		// final_target_url is required for DESKTOP.
	})
	st, d, ok := Details(err)
	if !ok || st.Code() != codes.InvalidArgument {
		t.Fatalf("error = %v, want INVALID_ARGUMENT", err)
	}
	if d.ErrorInfo.GetReason() != "INVALID_FIELD" || d.ErrorInfo.GetDomain() != "prove-gateway" {
		t.Errorf("ErrorInfo = %v, want INVALID_FIELD in prove-gateway", d.ErrorInfo)
	}
	violations := d.BadRequest.GetFieldViolations()
	if len(violations) != 1 || violations[0].GetField() != "final_target_url" {
		t.Errorf("BadRequest = %v, want one violation of final_target_url", d.BadRequest)
	}
	if d.ProveError != nil {
		t.Errorf("ProveError = %v, want none: Prove was not called", d.ProveError)
	}
}

func TestUnknownCorrelationIDCarriesProveError(t *testing.T) {
	_, err := gatewayv1.NewUnifyServiceClient(conn).UnifyStatus(callCtx(t), &gatewayv1.UnifyStatusRequest{
		CorrelationId: uuid.NewString(), // lower-case UUIDv4 that no session has
	})
	st, d, ok := Details(err)
	if !ok || st.Code() != codes.FailedPrecondition {
		t.Fatalf("error = %v, want FAILED_PRECONDITION", err)
	}
	if d.ErrorInfo.GetReason() != "INVALID_CORRELATION_ID" || d.ErrorInfo.GetMetadata()["proveCode"] != "8008" {
		t.Errorf("ErrorInfo = %v, want INVALID_CORRELATION_ID with proveCode 8008", d.ErrorInfo)
	}
	if d.ProveError.GetCode() != gatewayv1.ProveErrorCode_PROVE_ERROR_CODE_INVALID_CORRELATION_ID ||
		d.ProveError.GetRawCode() != 8008 {
		t.Errorf("ProveError = %v, want INVALID_CORRELATION_ID (8008)", d.ProveError)
	}
	if d.RetryInfo != nil {
		t.Errorf("RetryInfo = %v, want none: waiting does not help", d.RetryInfo)
	}
}

func TestProveOutageCarriesRetryInfo(t *testing.T) {
	// Every Prove call answers 500/8000 until the faults are cleared again.
	simulator(t, http.MethodPut, "/_simulator/faults", map[string]float64{"errorRate": 1})
	t.Cleanup(func() { simulator(t, http.MethodPut, "/_simulator/faults", map[string]float64{}) })

	_, err := gatewayv1.NewUnifyServiceClient(conn).Unify(callCtx(t), &gatewayv1.UnifyRequest{
		PossessionType: gatewayv1.PossessionType_POSSESSION_TYPE_MOBILE,
		PhoneNumber:    "2001004014",
	})
	st, d, ok := Details(err)
	if !ok || st.Code() != codes.Unavailable {
		t.Fatalf("error = %v, want UNAVAILABLE", err)
	}
	if d.ErrorInfo.GetReason() != "PROVE_INTERNAL_ERROR" || d.ErrorInfo.GetDomain() != "proveapis.com" {
		t.Errorf("ErrorInfo = %v, want PROVE_INTERNAL_ERROR from proveapis.com", d.ErrorInfo)
	}
	if d.RetryInfo.GetRetryDelay().AsDuration() <= 0 {
		t.Errorf("RetryInfo = %v, want a positive retry_delay", d.RetryInfo)
	}
	if d.ProveError.GetRawCode() != 8000 {
		t.Errorf("ProveError = %v, want raw_code 8000", d.ProveError)
	}
}

func TestConnectionWithoutClientCertificateIsRefused(t *testing.T) {
	files := TLSFilesFromEnv()
	if files.CertFile == "" {
		t.Skip("not an mTLS run: set PROVE_GATEWAY_CA_FILE, _CLIENT_CERT_FILE and _CLIENT_KEY_FILE")
	}
	// The same CA, so the client trusts the gateway; but no certificate of its own.
	anonymous, err := Dial(gatewayAddr, TLSFiles{CAFile: files.CAFile})
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer anonymous.Close()

	_, err = gatewayv1.NewVerifyServiceClient(anonymous).Verify(callCtx(t), &gatewayv1.VerifyRequest{
		PossessionType: gatewayv1.PossessionType_POSSESSION_TYPE_CUSTOMER_SUPPLIED,
		PhoneNumber:    "2001004011",
		FirstName:      "Tod",
		LastName:       "Weedall",
	})
	// No gRPC status could be sent: the connection fails, so the call is UNAVAILABLE (a caller
	// refused after the handshake would get UNAUTHENTICATED instead).
	if st := status.Convert(err); st.Code() != codes.Unavailable {
		t.Fatalf("Verify without a client certificate = %v, want UNAVAILABLE", err)
	}

	// Why, one level down: the gateway ends the handshake with TLS's certificate_required
	// alert. With TLS 1.3 the client learns it on its first read; a gateway that let the
	// connection through would send its HTTP/2 SETTINGS there instead.
	cfg, err := TLSFiles{CAFile: files.CAFile}.Config()
	if err != nil {
		t.Fatal(err)
	}
	cfg.NextProtos = []string{"h2"}
	raw, err := tls.Dial("tcp", gatewayAddr, cfg)
	if err == nil {
		defer raw.Close()
		_ = raw.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = raw.Read(make([]byte, 1))
	}
	if err == nil || !strings.Contains(err.Error(), "certificate required") {
		t.Fatalf("TLS without a client certificate: %v, want the certificate_required alert", err)
	}
}
