package example

import (
	"errors"
	"testing"

	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	gatewayv1 "github.com/prove-gateway/prove-gateway/gen/go/prove/gateway/v1"
)

// The gateway that clients-test.sh starts runs its embedded simulator, so here the mark must be
// there: that proves IsSimulated reads the header where the gateway puts it. In production the
// same helper finds nothing, and NotSimulated lets every call through.

func TestSimulatedMarkIsInTheHeadersOfASuccessfulUnify(t *testing.T) {
	var header, trailer metadata.MD
	_, err := gatewayv1.NewUnifyServiceClient(conn).Unify(callCtx(t), &gatewayv1.UnifyRequest{
		PossessionType: gatewayv1.PossessionType_POSSESSION_TYPE_MOBILE,
		PhoneNumber:    "2001004014",
	}, grpc.Header(&header), grpc.Trailer(&trailer))
	if err != nil {
		t.Fatalf("Unify: %v", err)
	}
	if !IsSimulated(header) {
		t.Fatalf("headers %v lack %s: true", header, SimulatedHeader)
	}
}

func TestSimulatedMarkIsInTheTrailersOfAFailedCall(t *testing.T) {
	var header, trailer metadata.MD
	_, err := gatewayv1.NewUnifyServiceClient(conn).UnifyStatus(callCtx(t), &gatewayv1.UnifyStatusRequest{
		CorrelationId: uuid.NewString(), // no session has it
	}, grpc.Header(&header), grpc.Trailer(&trailer))
	if status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("UnifyStatus of an unknown ID = %v, want FAILED_PRECONDITION", err)
	}
	// A trailers-only response: the mark travels with grpc-status.
	if !IsSimulated(trailer) {
		t.Fatalf("trailers %v lack %s: true", trailer, SimulatedHeader)
	}
}

func TestNotSimulatedRefusesTheSimulatorsAnswers(t *testing.T) {
	// What a production caller does, once, on its connection.
	guarded, err := Dial(gatewayAddr, TLSFilesFromEnv(), grpc.WithChainUnaryInterceptor(NotSimulated()))
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	defer guarded.Close()
	unify := gatewayv1.NewUnifyServiceClient(guarded)

	// A success turned into ErrSimulated: the caller never sees "PENDING" from a simulator.
	_, err = unify.Unify(callCtx(t), &gatewayv1.UnifyRequest{
		PossessionType: gatewayv1.PossessionType_POSSESSION_TYPE_MOBILE,
		PhoneNumber:    "2001004014",
	})
	if !errors.Is(err, ErrSimulated) {
		t.Fatalf("Unify through NotSimulated = %v, want ErrSimulated", err)
	}

	// A failure keeps its gRPC status next to ErrSimulated.
	_, err = unify.UnifyStatus(callCtx(t), &gatewayv1.UnifyStatusRequest{CorrelationId: uuid.NewString()})
	if !errors.Is(err, ErrSimulated) {
		t.Fatalf("UnifyStatus through NotSimulated = %v, want ErrSimulated", err)
	}
	if st, ok := status.FromError(err); !ok || st.Code() != codes.FailedPrecondition {
		t.Fatalf("UnifyStatus through NotSimulated lost its status: %v", err)
	}
}

func TestIsSimulatedReadsOnlyTheMark(t *testing.T) {
	cases := []struct {
		name string
		mds  []metadata.MD
		want bool
	}{
		{"no metadata", nil, false},
		{"other headers", []metadata.MD{metadata.Pairs("content-type", "application/grpc")}, false},
		{"mark false", []metadata.MD{metadata.Pairs(SimulatedHeader, "false")}, false},
		{"mark in headers", []metadata.MD{metadata.Pairs(SimulatedHeader, "true"), nil}, true},
		{"mark in trailers", []metadata.MD{{}, metadata.Pairs(SimulatedHeader, "true")}, true},
	}
	for _, c := range cases {
		if got := IsSimulated(c.mds...); got != c.want {
			t.Errorf("%s: IsSimulated = %v, want %v", c.name, got, c.want)
		}
	}
}
