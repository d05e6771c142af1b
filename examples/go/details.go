// Package example is a small Go client of prove-gateway: it dials the gateway with the
// generated stubs and unpacks the structured details of a failed call.
package example

import (
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	gatewayv1 "github.com/prove-gateway/prove-gateway/gen/go/prove/gateway/v1"
)

// Dial connects to the gateway at addr ("host:port"): plaintext when files has no CA file,
// TLS when it has one, and mTLS when it also names a client certificate and key. opts come
// after the credentials, e.g. grpc.WithChainUnaryInterceptor(NotSimulated()) in production.
func Dial(addr string, files TLSFiles, opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	creds, err := files.Credentials()
	if err != nil {
		return nil, err
	}
	return grpc.NewClient(addr, append([]grpc.DialOption{grpc.WithTransportCredentials(creds)}, opts...)...)
}

// ErrorDetails holds the details of a failed RPC: exactly one ErrorInfo, and the others when the
// gateway attached them.
type ErrorDetails struct {
	ErrorInfo  *errdetails.ErrorInfo
	RetryInfo  *errdetails.RetryInfo
	BadRequest *errdetails.BadRequest
	// RequestInfo's request_id is the correlation ID, when known.
	RequestInfo *errdetails.RequestInfo
	// ProveError is set when Prove itself answered with an error.
	ProveError *gatewayv1.ProveError
}

// Details unpacks the google.rpc.Status details of err. ok is false when err is not a gRPC
// status error.
func Details(err error) (st *status.Status, d ErrorDetails, ok bool) {
	st, ok = status.FromError(err)
	if !ok {
		return st, d, false
	}
	// Details() resolves each Any through the global registry, which the imports of errdetails
	// and gatewayv1 fill; an unknown type comes back as an error value and is skipped.
	for _, detail := range st.Details() {
		switch v := detail.(type) {
		case *errdetails.ErrorInfo:
			d.ErrorInfo = v
		case *errdetails.RetryInfo:
			d.RetryInfo = v
		case *errdetails.BadRequest:
			d.BadRequest = v
		case *errdetails.RequestInfo:
			d.RequestInfo = v
		case *gatewayv1.ProveError:
			d.ProveError = v
		}
	}
	return st, d, true
}
