package example

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// SimulatedHeader is the metadata key with which a gateway running its embedded Prove
// simulator marks every answer of its services: in the response headers on success, in the
// trailers of a failed call. Such an answer verified nobody, so production callers refuse it.
const SimulatedHeader = "prove-gateway-simulated"

// ErrSimulated is returned by NotSimulated when the gateway's answer came from its simulator.
var ErrSimulated = errors.New("prove-gateway answered from its embedded simulator (prove-gateway-simulated: true): " +
	"no person was verified; the gateway lacks PROVE_BASE_URL")

// IsSimulated reports whether any of the given response headers or trailers carries
// `prove-gateway-simulated: true`. Pass both: a successful call has it in its headers, a failed
// one (a trailers-only response) in its trailers.
func IsSimulated(mds ...metadata.MD) bool {
	for _, md := range mds {
		for _, v := range md.Get(SimulatedHeader) {
			if strings.EqualFold(strings.TrimSpace(v), "true") {
				return true
			}
		}
	}
	return false
}

// NotSimulated is a unary client interceptor for production: it fails every call whose answer
// carries the simulator's mark with ErrSimulated, so a gateway deployed without Prove cannot tell
// this caller that someone was verified. The call's own error, if any, is kept alongside
// (errors.Is finds ErrSimulated, status.FromError still finds the gRPC status). Install it once:
//
//	grpc.NewClient(addr, creds, grpc.WithChainUnaryInterceptor(example.NotSimulated()))
func NotSimulated() grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn,
		invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		var header, trailer metadata.MD
		opts = append(opts, grpc.Header(&header), grpc.Trailer(&trailer))
		err := invoker(ctx, method, req, reply, cc, opts...)
		if IsSimulated(header, trailer) {
			if err != nil {
				return errors.Join(fmt.Errorf("%s: %w", method, ErrSimulated), err)
			}
			return fmt.Errorf("%s: %w", method, ErrSimulated)
		}
		return err
	}
}
