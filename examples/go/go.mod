module github.com/prove-gateway/prove-gateway/examples/go

go 1.24.0

// The stubs are generated, not committed: scripts/gen-stubs.sh writes them, with their own
// go.mod, to gen/go at the repository root, under the import path their go_package names.
replace github.com/prove-gateway/prove-gateway/gen/go => ../../gen/go

require (
	github.com/google/uuid v1.6.0
	github.com/prove-gateway/prove-gateway/gen/go v0.0.0-00010101000000-000000000000
	google.golang.org/genproto/googleapis/rpc v0.0.0-20250804133106-a7a43d27e69b
	google.golang.org/grpc v1.76.0
)

require (
	golang.org/x/net v0.42.0 // indirect
	golang.org/x/sys v0.34.0 // indirect
	golang.org/x/text v0.27.0 // indirect
	google.golang.org/protobuf v1.36.11 // indirect
)
