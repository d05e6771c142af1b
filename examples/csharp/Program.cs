// Starts a Unify session through prove-gateway, then shows how a failed call's details are read.
//   dotnet run -- localhost:50051
using Google.Rpc;
using Grpc.Core;
using Grpc.Net.Client;
using Prove.Gateway.V1;

var address = args.Length > 0 ? args[0] : "localhost:50051";
// http:// for plaintext on loopback; use https:// in production.
using var channel = GrpcChannel.ForAddress($"http://{address}");
var unify = new UnifyService.UnifyServiceClient(channel);

var started = await unify.UnifyAsync(
    new UnifyRequest { PossessionType = PossessionType.Mobile, PhoneNumber = "2001004014" },
    deadline: DateTime.UtcNow.AddSeconds(10));
Console.WriteLine($"Unify: {started.Success}, correlation_id {started.CorrelationId}");
// Hand started.AuthToken to Prove's client SDK; after it finished, read the outcome:
//   await unify.UnifyStatusAsync(new UnifyStatusRequest { CorrelationId = started.CorrelationId });

try
{
    // DESKTOP requires final_target_url: the gateway answers INVALID_ARGUMENT.
    await unify.UnifyAsync(
        new UnifyRequest { PossessionType = PossessionType.Desktop, PhoneNumber = "2001004014" },
        deadline: DateTime.UtcNow.AddSeconds(10));
}
catch (RpcException e)
{
    Describe(e);
}

try
{
    // A correlation ID no session has: Prove answers 8008, FAILED_PRECONDITION.
    await unify.UnifyStatusAsync(
        new UnifyStatusRequest { CorrelationId = Guid.NewGuid().ToString() },
        deadline: DateTime.UtcNow.AddSeconds(10));
}
catch (RpcException e)
{
    Describe(e);
}

static void Describe(RpcException e)
{
    Console.WriteLine($"{e.StatusCode}: {e.Status.Detail}");
    Google.Rpc.Status? status = e.GetRpcStatus(); // null when the server sent no details
    if (status is null) return;

    var info = status.GetDetail<ErrorInfo>();
    Console.WriteLine($"  ErrorInfo {info?.Reason} ({info?.Domain}) {info?.Metadata}");
    if (status.GetDetail<BadRequest>() is { } bad)
        foreach (var v in bad.FieldViolations)
            Console.WriteLine($"  BadRequest {v.Field}: {v.Description}");
    if (status.GetDetail<RetryInfo>() is { } retry)
        Console.WriteLine($"  RetryInfo: retry after {retry.RetryDelay.ToTimeSpan()}");
    if (status.GetDetail<ProveError>() is { } prove)
        Console.WriteLine($"  ProveError {prove.Code} (raw {prove.RawCode}): {prove.Message}");
}
