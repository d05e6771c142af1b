//! The `prove-gateway` binary: parse the configuration, set up telemetry, serve until a signal.

use std::process::ExitCode;

use prove_gateway::config::{Cli, Command, Settings};
use prove_gateway::{server, simulator, telemetry};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse_stated();
    let result = match cli.command {
        Some(Command::Simulator(args)) => run_simulator(args).await,
        None => run_gateway(cli.gateway).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("prove-gateway: {error:#}");
            ExitCode::from(2)
        }
    }
}

async fn run_gateway(args: prove_gateway::config::GatewayArgs) -> anyhow::Result<()> {
    let settings = Settings::from_args(args).map_err(|e| anyhow::anyhow!("configuration: {e}"))?;
    let guard = telemetry::init(&settings)?;
    server::raise_open_file_limit(settings.connections.max_connections);
    telemetry::serve_metrics(settings.metrics_listen)?;
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .map_err(|e| anyhow::anyhow!("PROVE_GATEWAY_LISTEN {}: {e}", settings.listen))?;
    tracing::info!(listen = %settings.listen, "prove-gateway serving");
    let served = server::run(settings, listener, server::shutdown_signal()).await;
    guard.shutdown().await;
    served
}

async fn run_simulator(args: prove_gateway::config::SimulatorArgs) -> anyhow::Result<()> {
    telemetry::init_plain_logs();
    let config = simulator::SimulatorConfig {
        listen: args.listen,
        rate_limit_rps: args.rate_limit_rps,
        token_ttl: *args.token_ttl,
        ..simulator::SimulatorConfig::default()
    };
    simulator::run_standalone(config, server::shutdown_signal())
        .await
        .map_err(|e| anyhow::anyhow!("PROVE_SIMULATOR_LISTEN {}: {e}", args.listen))
}
