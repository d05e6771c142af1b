//! The gateway's overhead, throughput, the cost of mTLS, limiter precision, memory and start-up,
//! side by side (issues 9 and 15). `cargo bench --bench gateway` prints one Markdown table;
//! BENCHMARKS.md keeps a run.
//!
//! Everything runs on this machine over real loopback sockets:
//! - the simulator (`prove_gateway::simulator::spawn`) in this process;
//! - the gateway as its own process (`target/release/prove-gateway`, Cargo builds it for this
//!   bench), with its production telemetry (info logs to /dev/null, Prometheus metrics, the
//!   OpenTelemetry layer) for latency, throughput, memory and start-up;
//! - for limiter precision, the gateway in this process (`server::run`, started by the
//!   black-box tests' fixture, `tests/support`), so that a `metrics` recorder here sees every
//!   rate-limit wait exactly;
//! - for the cost of the trust boundary, two gateway processes in the same run: plaintext and
//!   open, and TLS + mTLS + a callers file (`support/tls.rs`);
//! - the load generator: closed loops (a fixed number of calls in flight) and an open loop (a
//!   fixed offered rate) written here with tokio, in place of ghz.
//!
//! No assertions: targets are compared and printed, never enforced. `BENCH_QUICK=1` shortens
//! every phase for development (its figures are not for BENCHMARKS.md).

#![allow(clippy::unwrap_used, clippy::expect_used)]

// The gateway-plus-simulator fixture of the tests, for the phase that runs the gateway in this
// process.
#[path = "../tests/support/mod.rs"]
mod fixture;
mod support;

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use prove_gateway::grpc::pb::unify_service_client::UnifyServiceClient;
use prove_gateway::simulator::{self, SimulatorConfig};
use support::load::{Direct, Run, Target, closed_loop, connect, unify_request};
use support::process::{GatewayProcess, Upstream, cpu_time, mb};
use support::recorder::WaitSamples;
use support::stats::{diff_ms, median, ms, pct, signed_ms, verdict};

/// Calls per closed-loop run at most (the duration ends a run long before).
const MAX_CALLS: usize = 5_000_000;

/// Durations of each phase.
struct Plan {
    quick: bool,
    warmup: Duration,
    /// Interleaved rounds per latency measurement (direct, gateway, direct, gateway, ...).
    rounds: u32,
    round: Duration,
    /// Throughput: per target, split into `rounds` interleaved slices.
    throughput: Duration,
    concurrency: usize,
    /// Limiter: the steady window, after `limiter_lead` of overload.
    limiter_window: Duration,
    limiter_lead: Duration,
    memory_calls: usize,
    memory_hold: Duration,
    startup_runs: usize,
}

impl Plan {
    fn new() -> Self {
        let quick = std::env::var_os("BENCH_QUICK").is_some_and(|v| !v.is_empty() && v != "0");
        if quick {
            Self {
                quick,
                warmup: Duration::from_millis(300),
                rounds: 2,
                round: Duration::from_millis(250),
                throughput: Duration::from_secs(1),
                concurrency: 64,
                limiter_window: Duration::from_secs(3),
                limiter_lead: Duration::from_secs(1),
                memory_calls: 1000,
                memory_hold: Duration::from_millis(1500),
                startup_runs: 2,
            }
        } else {
            Self {
                quick,
                warmup: Duration::from_secs(2),
                rounds: 5,
                round: Duration::from_millis(800),
                throughput: Duration::from_secs(5),
                concurrency: 64,
                limiter_window: Duration::from_secs(10),
                limiter_lead: Duration::from_secs(1),
                memory_calls: 1000,
                memory_hold: Duration::from_millis(2500),
                startup_runs: 5,
            }
        }
    }
}

/// The printed table: measurement, figure, target, verdict.
#[derive(Default)]
struct Table(Vec<[String; 4]>);

impl Table {
    fn row(&mut self, what: impl Into<String>, figure: impl Into<String>, target: &str, v: &str) {
        self.0
            .push([what.into(), figure.into(), target.to_owned(), v.to_owned()]);
    }

    fn print(&self) {
        println!("| measurement | figure | target | verdict |");
        println!("|---|---|---|---|");
        for [a, b, c, d] in &self.0 {
            println!("| {a} | {b} | {c} | {d} |");
        }
    }
}

fn main() -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("gateway bench: cannot start tokio: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gateway bench failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    let plan = Plan::new();
    let waits = support::recorder::install()?;
    let started = Instant::now();
    let load_start = support::loadavg();
    println!(
        "# prove-gateway benchmark{}",
        if plan.quick {
            " (BENCH_QUICK: short phases, figures not comparable)"
        } else {
            ""
        }
    );
    println!("machine: {}", support::machine());
    println!("gateway binary: {}", support::process::bin());
    println!("load average at start: {load_start}");
    println!();

    let mut table = Table::default();
    eprintln!("[1/5] latency and throughput ...");
    let baseline = latency_and_throughput(&plan, &mut table).await?;
    eprintln!("[2/5] cost of mTLS and authorization ...");
    mtls_cost(&plan, &mut table).await?;
    eprintln!("[3/5] limiter precision ...");
    limiter(&plan, &waits, baseline, &mut table).await?;
    eprintln!("[4/5] memory ...");
    memory(&plan, &mut table).await?;
    eprintln!("[5/5] start-up ...");
    startup(&plan, &mut table).await?;

    table.print();
    println!();
    println!(
        "load average (1/5/15 min): {load_start} at start, {} at end; total {:.0} s",
        support::loadavg(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Latency added by the gateway (c=1 and c=64) and throughput against the direct path and a
/// bare tonic server. Returns the unloaded gateway p50 (the limiter phase's baseline).
async fn latency_and_throughput(plan: &Plan, table: &mut Table) -> anyhow::Result<Duration> {
    // Neither limiter involved: the simulator's off (`FastSimulator`), the gateway's far above
    // the load.
    let fast = support::fast_sim::FastSimulator::spawn().await?;
    let sim = &fast.sim;
    let url = sim.base_url();
    let mut gateway_process = GatewayProcess::spawn(
        Upstream::Url(&url),
        &[
            ("PROVE_RATE_LIMIT_RPS", "1000000"),
            ("PROVE_RATE_LIMIT_QUEUE", "100000"),
        ],
    )?;
    gateway_process
        .wait_serving(Duration::from_secs(20))
        .await?;
    let channel = connect(gateway_process.addr).await?;
    // One real answer of the gateway: the bare server answers exactly this message.
    let answer = UnifyServiceClient::new(channel.clone())
        .unify(unify_request())
        .await?
        .into_inner();
    let gateway = Target::Grpc(UnifyServiceClient::new(channel));
    let direct = Target::Direct(Direct::new(&url).await?);
    let bare_addr = support::bare::spawn(answer).await?;
    let bare = Target::Grpc(UnifyServiceClient::new(connect(bare_addr).await?));

    for target in [&direct, &gateway, &bare] {
        closed_loop(target, plan.concurrency, plan.warmup, MAX_CALLS).await;
        closed_loop(target, 1, plan.warmup / 4, MAX_CALLS).await;
    }

    let mut unloaded_gateway_p50 = Duration::ZERO;
    for concurrency in [1, plan.concurrency] {
        let (mut d, mut g, mut b) = (Run::default(), Run::default(), Run::default());
        for _ in 0..plan.rounds {
            d.absorb(closed_loop(&direct, concurrency, plan.round, MAX_CALLS).await);
            g.absorb(closed_loop(&gateway, concurrency, plan.round, MAX_CALLS).await);
            b.absorb(closed_loop(&bare, concurrency, plan.round / 2, MAX_CALLS).await);
        }
        let (d, g, b) = (d.sorted(), g.sorted(), b.sorted());
        if concurrency == 1 {
            unloaded_gateway_p50 = pct(&g.latencies, 0.5);
        }
        for (q, name, target_ms) in [(0.5, "p50", 0.2), (0.99, "p99", 1.0)] {
            let (dq, gq) = (pct(&d.latencies, q), pct(&g.latencies, q));
            let overhead = diff_ms(dq, gq);
            table.row(
                format!("Unify latency c={concurrency} {name}: direct → gateway (overhead)"),
                format!(
                    "{} → {} ({}); {}+{} calls, {}+{} errors",
                    ms(dq),
                    ms(gq),
                    signed_ms(overhead),
                    d.latencies.len(),
                    g.latencies.len(),
                    d.errors,
                    g.errors
                ),
                &format!("overhead ≤ {target_ms} ms"),
                verdict(overhead <= target_ms),
            );
        }
        table.row(
            format!("Reference: bare tonic server (no upstream) c={concurrency} p50 / p99"),
            format!(
                "{} / {} ({} calls)",
                ms(pct(&b.latencies, 0.5)),
                ms(pct(&b.latencies, 0.99)),
                b.latencies.len()
            ),
            "report",
            "–",
        );
    }

    // Throughput: closed loop at `concurrency`, the same time per target, interleaved slices.
    // CPU time of the gateway process and of this one (load generator + simulator) per call.
    let slice = plan.throughput / plan.rounds;
    let (mut b, mut g, mut d) = (Run::default(), Run::default(), Run::default());
    let (mut b_cpu, mut g_cpu) = (Duration::ZERO, Duration::ZERO);
    let (mut g_self_cpu, mut d_cpu) = (Duration::ZERO, Duration::ZERO);
    let gateway_pid = gateway_process.pid().to_string();
    for _ in 0..plan.rounds {
        let me = cpu_time("self");
        b.absorb(closed_loop(&bare, plan.concurrency, slice, MAX_CALLS).await);
        let (me2, gw) = (cpu_time("self"), cpu_time(&gateway_pid));
        b_cpu += me2 - me;
        g.absorb(closed_loop(&gateway, plan.concurrency, slice, MAX_CALLS).await);
        let (me3, gw2) = (cpu_time("self"), cpu_time(&gateway_pid));
        g_self_cpu += me3 - me2;
        g_cpu += gw2 - gw;
        d.absorb(closed_loop(&direct, plan.concurrency, slice, MAX_CALLS).await);
        d_cpu += cpu_time("self") - me3;
    }
    let per_call = |cpu: Duration, run: &Run| {
        format!(
            "{:.0} µs",
            cpu.as_secs_f64() * 1e6 / (run.latencies.len().max(1) as f64)
        )
    };
    let secs = plan.throughput.as_secs_f64();
    table.row(
        format!(
            "Throughput, closed loop c={}, {secs:.0} s each: bare tonic / gateway / direct",
            plan.concurrency
        ),
        format!(
            "{:.0} / {:.0} / {:.0} calls/s ({} / {} / {} errors)",
            b.rate(),
            g.rate(),
            d.rate(),
            b.errors,
            g.errors,
            d.errors
        ),
        "report",
        "–",
    );
    table.row(
        "Throughput ratios: gateway ÷ bare tonic, gateway ÷ direct",
        format!(
            "{:.2}, {:.2}",
            g.rate() / b.rate().max(1e-9),
            g.rate() / d.rate().max(1e-9)
        ),
        "report",
        "–",
    );

    table.row(
        "CPU per call during the throughput runs: gateway process; load generator + simulator process (gateway path / direct path / bare tonic)",
        format!(
            "{}; {} / {} / {}",
            per_call(g_cpu, &g),
            per_call(g_self_cpu, &g),
            per_call(d_cpu, &d),
            per_call(b_cpu, &b)
        ),
        "report",
        "–",
    );

    gateway_process.stop();
    fast.shutdown().await;
    Ok(unloaded_gateway_p50)
}

/// The added cost per call of TLS, mTLS and the callers file (issue 15): c=1 Unify through a
/// plaintext open gateway and through one with mTLS and a callers file, both processes of this
/// run, each over one connection made before the measurement.
async fn mtls_cost(plan: &Plan, table: &mut Table) -> anyhow::Result<()> {
    let cost = support::tls::measure(&support::tls::Timing {
        warmup: plan.warmup,
        rounds: plan.rounds,
        round: plan.round,
        max_calls: MAX_CALLS,
    })
    .await?;
    let (p, m) = (&cost.plaintext, &cost.mtls);
    for (q, name, target) in [(0.5, "p50", Some(0.1)), (0.99, "p99", None)] {
        let (pq, mq) = (pct(&p.latencies, q), pct(&m.latencies, q));
        let added = diff_ms(pq, mq);
        let (target, verdict) = match target {
            Some(limit) => (format!("added ≤ {limit} ms"), verdict(added <= limit)),
            None => ("report".to_owned(), "–"),
        };
        table.row(
            format!(
                "Unify latency c=1 {name}: plaintext open → mTLS + callers file, after the handshake (added)"
            ),
            format!(
                "{} → {} ({}); {}+{} calls, {}+{} errors",
                ms(pq),
                ms(mq),
                signed_ms(added),
                p.latencies.len(),
                m.latencies.len(),
                p.errors,
                m.errors
            ),
            &target,
            verdict,
        );
    }
    Ok(())
}

/// Outcome of one open-loop call.
struct Offered {
    code: tonic::Code,
    latency: Duration,
}

/// Four times the budget, open loop, against the default limiter and a simulator enforcing
/// Prove's 25/s: the rate that reaches it, 429s, shed calls and the wait of admitted calls.
async fn limiter(
    plan: &Plan,
    waits: &WaitSamples,
    unloaded_p50: Duration,
    table: &mut Table,
) -> anyhow::Result<()> {
    const BUDGET: f64 = 25.0;
    const OFFERED_RPS: u32 = 100;
    let sim = simulator::spawn(SimulatorConfig::default()).await?;
    // The gateway in this process, started as the black-box tests start it.
    let app = fixture::app::try_spawn_gateway(sim.clone(), |_| {}).await?;
    let client = app.unify.clone();

    // Unloaded: well below the budget, so no call waits (this also fetches the token).
    let mut unloaded = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        if client.clone().unify(unify_request()).await.is_ok() {
            unloaded.push(t.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    unloaded.sort_unstable();
    let unloaded_limited_p50 = pct(&unloaded, 0.5);

    tokio::time::sleep(Duration::from_millis(1100)).await;
    sim.reset_records();
    let _ = waits.take();

    let period = Duration::from_secs(1) / OFFERED_RPS;
    let load_for = plan.limiter_lead + plan.limiter_window + Duration::from_millis(500);
    let ticks = (load_for.as_secs_f64() * f64::from(OFFERED_RPS)).round() as u64;
    let t0 = tokio::time::Instant::now();
    let mut interval = tokio::time::interval_at(t0, period);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..ticks {
        interval.tick().await;
        let mut client = client.clone();
        calls.spawn(async move {
            let mut request = tonic::Request::new(unify_request());
            request.set_timeout(Duration::from_secs(10));
            let t = Instant::now();
            let code = match client.unify(request).await {
                Ok(_) => tonic::Code::Ok,
                Err(status) => status.code(),
            };
            Offered {
                code,
                latency: t.elapsed(),
            }
        });
    }
    let offered_for = t0.elapsed();
    // Admitted calls wait up to the limiter's maximum wait (5 s) after the load stops.
    let give_up = tokio::time::Instant::now() + Duration::from_secs(12);
    let mut outcomes = Vec::new();
    while let Ok(Some(joined)) = tokio::time::timeout_at(give_up, calls.join_next()).await {
        if let Ok(outcome) = joined {
            outcomes.push(outcome);
        }
    }
    let unfinished = calls.len();
    calls.abort_all();

    let records = sim.records();
    let (from, to) = (
        t0 + plan.limiter_lead,
        t0 + plan.limiter_lead + plan.limiter_window,
    );
    let in_window = records
        .for_path("/v3/unify")
        .filter(|r| r.status == Some(200) && r.received >= from && r.received < to)
        .count();
    let too_many = records
        .requests()
        .iter()
        .filter(|r| r.status == Some(429))
        .count();
    let window_s = plan.limiter_window.as_secs_f64();
    let fraction = in_window as f64 / (window_s * BUDGET);
    table.row(
        format!(
            "Limiter: upstream rate in the steady {window_s:.0} s (offered {OFFERED_RPS}/s open loop for {:.1} s; default limiter; simulator enforcing 25/s)",
            offered_for.as_secs_f64()
        ),
        format!(
            "{in_window} × 200 on /v3/unify = {:.2}/s = {fraction:.3} of 25/s",
            in_window as f64 / window_s
        ),
        "≥ 0.97",
        verdict(fraction >= 0.97),
    );
    table.row(
        "Limiter: 429 answers from the simulator (whole run)",
        too_many.to_string(),
        "0",
        verdict(too_many == 0),
    );
    let count = |code: tonic::Code| outcomes.iter().filter(|o| o.code == code).count();
    let ok = count(tonic::Code::Ok);
    let shed = count(tonic::Code::ResourceExhausted);
    table.row(
        "Limiter: calls offered / admitted (OK) / shed (RESOURCE_EXHAUSTED) / other",
        format!(
            "{ticks} / {ok} / {shed} / {}",
            outcomes.len() - ok - shed + unfinished
        ),
        "report",
        "–",
    );
    let recorded = waits.take();
    table.row(
        "Limiter wait of admitted calls, p50 / p99 (gateway metric `…rate_limit_wait_seconds`, exact samples)",
        format!(
            "{} / {} ({} samples)",
            ms(pct(&recorded, 0.5)),
            ms(pct(&recorded, 0.99)),
            recorded.len()
        ),
        "report",
        "–",
    );
    let mut admitted: Vec<Duration> = outcomes
        .iter()
        .filter(|o| o.code == tonic::Code::Ok)
        .map(|o| o.latency.saturating_sub(unloaded_limited_p50))
        .collect();
    admitted.sort_unstable();
    table.row(
        "Limiter wait, client side: admitted latency − unloaded p50, p50 / p99",
        format!(
            "{} / {} (unloaded p50 {}; no-limit gateway process c=1 p50 {})",
            ms(pct(&admitted, 0.5)),
            ms(pct(&admitted, 0.99)),
            ms(unloaded_limited_p50),
            ms(unloaded_p50)
        ),
        "report",
        "–",
    );

    let _ = tokio::time::timeout(Duration::from_secs(8), app.stop()).await;
    sim.shutdown().await;
    Ok(())
}

/// Resident set of the gateway process idle and with `memory_calls` calls waiting for the
/// 25/s limiter.
async fn memory(plan: &Plan, table: &mut Table) -> anyhow::Result<()> {
    const PER_CONNECTION: usize = 100;
    let sim = simulator::spawn(SimulatorConfig::default()).await?;
    let url = sim.base_url();
    let mut gateway = GatewayProcess::spawn(
        Upstream::Url(&url),
        &[
            ("PROVE_RATE_LIMIT_MAX_WAIT", "120s"),
            ("PROVE_RATE_LIMIT_QUEUE", "4096"),
        ],
    )?;
    gateway.wait_serving(Duration::from_secs(20)).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (idle, _) = gateway.rss()?;

    // Several connections, as several callers would open.
    let mut clients = Vec::new();
    for _ in 0..plan.memory_calls.div_ceil(PER_CONNECTION) {
        clients.push(UnifyServiceClient::new(connect(gateway.addr).await?));
    }
    let answered = Arc::new(AtomicUsize::new(0));
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..plan.memory_calls {
        let mut client = clients[i / PER_CONNECTION].clone();
        let answered = Arc::clone(&answered);
        calls.spawn(async move {
            let mut request = tonic::Request::new(unify_request());
            request.set_timeout(Duration::from_secs(60));
            let _ = client.unify(request).await;
            answered.fetch_add(1, Ordering::Relaxed);
        });
    }
    let mut peak = 0;
    let hold_until = Instant::now() + plan.memory_hold;
    while Instant::now() < hold_until {
        tokio::time::sleep(Duration::from_millis(100)).await;
        peak = peak.max(gateway.rss()?.0);
    }
    let (_, hwm) = gateway.rss()?;
    let answered = answered.load(Ordering::Relaxed);
    calls.abort_all();
    while calls.join_next().await.is_some() {}
    drop(clients);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (after, _) = gateway.rss()?;

    table.row(
        "Gateway process RSS idle (after SERVING, before any call)",
        mb(idle),
        "report",
        "–",
    );
    table.row(
        format!(
            "Gateway process RSS with {} calls waiting behind the 25/s limiter (peak VmRSS over {:.1} s; VmHWM)",
            plan.memory_calls,
            plan.memory_hold.as_secs_f64()
        ),
        format!(
            "{} (VmHWM {}; {answered} answered meanwhile; {} 1 s after cancelling)",
            mb(peak),
            mb(hwm),
            mb(after)
        ),
        "≤ 50 MB",
        verdict(peak <= 50 * 1000 * 1000),
    );
    gateway.stop();
    sim.shutdown().await;
    Ok(())
}

/// Spawn to health SERVING, with the embedded simulator and with a Prove URL.
async fn startup(plan: &Plan, table: &mut Table) -> anyhow::Result<()> {
    let sim = simulator::spawn(SimulatorConfig::default()).await?;
    let url = sim.base_url();
    let (mut embedded, mut remote) = (Vec::new(), Vec::new());
    for _ in 0..plan.startup_runs {
        for (upstream, into) in [
            (Upstream::Embedded, &mut embedded),
            (Upstream::Url(&url), &mut remote),
        ] {
            let mut gateway = GatewayProcess::spawn(upstream, &[])?;
            into.push(gateway.wait_serving(Duration::from_secs(20)).await?);
            gateway.stop();
        }
    }
    let all = |v: &[Duration]| v.iter().map(|d| ms(*d)).collect::<Vec<_>>().join(", ");
    table.row(
        format!(
            "Start-up to health SERVING, embedded simulator (median of {})",
            plan.startup_runs
        ),
        format!("{} (runs: {})", ms(median(&embedded)), all(&embedded)),
        "report",
        "–",
    );
    table.row(
        format!(
            "Start-up to health SERVING, PROVE_BASE_URL set (median of {})",
            plan.startup_runs
        ),
        format!("{} (runs: {})", ms(median(&remote)), all(&remote)),
        "report",
        "–",
    );
    sim.shutdown().await;
    Ok(())
}
