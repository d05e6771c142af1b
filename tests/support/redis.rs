//! A throwaway `redis-server` per test, or a clean skip where none is installed.
//!
//! Plain `cargo test` on a machine without `redis-server` skips the tests that need it and says
//! so once. `PROVE_GATEWAY_TEST_REQUIRE_REDIS=1` (set by `scripts/test.sh`) turns the skip into
//! a failure, so CI cannot pass without having run them.

use std::io::Write as _;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Once;
use std::time::Duration;

/// The variable that makes a missing `redis-server` a failure instead of a skip.
pub const REQUIRE_REDIS: &str = "PROVE_GATEWAY_TEST_REQUIRE_REDIS";

/// A redis-server on a loopback port, killed on drop.
pub struct Redis {
    child: Child,
    pub url: String,
}

impl Redis {
    /// A fresh redis-server, or `None` when it is not installed and not required: the test
    /// then returns at once (`let Some(redis) = Redis::start().await else { return };`).
    pub async fn start() -> Option<Self> {
        if !installed() {
            if required() {
                panic!(
                    "{REQUIRE_REDIS} is set but redis-server is not on PATH \
                     (apt-get install redis-server)"
                );
            }
            announce_skip();
            return None;
        }
        // The port is chosen by binding port 0 and released for redis-server to bind, so
        // another process can take it in between: redis-server then exits, and we try again.
        let mut exits = Vec::new();
        for _ in 0..10 {
            match Self::start_on_a_free_port().await {
                Ok(redis) => return Some(redis),
                Err(exit) => exits.push(exit),
            }
        }
        panic!("redis-server did not start: {exits:?}");
    }

    async fn start_on_a_free_port() -> Result<Self, String> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run redis-server: {e}"))?;
        let mut redis = Self {
            child,
            url: format!("redis://127.0.0.1:{port}"),
        };
        // Polled every 20 ms for at most 2 s: a redis-server that is up accepts at once.
        for _ in 0..100 {
            if let Ok(Some(status)) = redis.child.try_wait() {
                return Err(format!("port {port}: redis-server exited with {status}"));
            }
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Ok(redis);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Dropping `redis` kills it.
        Err(format!(
            "port {port}: redis-server did not accept within 2 s"
        ))
    }
}

impl Redis {
    /// Stops the server as an outage would (killed, no shutdown), and waits until it is gone.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn installed() -> bool {
    Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

fn required() -> bool {
    std::env::var_os(REQUIRE_REDIS).is_some_and(|v| !v.is_empty() && v != "0")
}

/// One line per test binary, however many tests skip. Written to stderr directly: the test
/// harness captures `eprintln!` of passing tests, and this line is for the person running them.
fn announce_skip() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = writeln!(
            std::io::stderr(),
            "note: redis-server is not installed: skipping the tests of the shared (Redis) \
             rate limiter; set {REQUIRE_REDIS}=1 to make that a failure"
        );
    });
}
