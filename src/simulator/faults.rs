//! Fault injection for the `/v3` endpoints: added latency, 500 / 8000 answers, dropped
//! connections and 200 answers whose body is not JSON, each with a configurable probability,
//! changeable at run time and optionally seeded for reproducible runs.
//!
//! Latency applies to every `/v3` request with a valid token (429s included). The other faults
//! are drawn after the bearer token and the rate limit were checked, so a faulted request still
//! counts against the limit, and before the sandbox logic runs, so a faulted request never
//! changes a session: retrying it is always safe. `/token` and `/_simulator/*` are never faulted,
//! so tests can always get a token and change the faults back.

use std::time::Duration;

use parking_lot::Mutex;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// What goes wrong, and how often. Rates are probabilities in `0.0..=1.0`, drawn independently
/// per request in the order drop, error, malformed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Faults {
    /// Fraction of requests answered 500 `{"code":8000,"message":"Internal Error"}`.
    pub error_rate: f64,
    /// Added before every `/v3` answer (including faulted ones).
    pub latency: Duration,
    /// Fraction of requests whose connection is closed (reset) without any answer.
    pub drop_rate: f64,
    /// Fraction of requests answered 200 with a body that is not valid JSON.
    pub malformed_rate: f64,
    /// Seed for the fault RNG; `None` seeds from the OS. Setting faults restarts the sequence.
    pub seed: Option<u64>,
}

impl Faults {
    /// No faults at all (the default).
    pub fn none() -> Self {
        Self::default()
    }

    /// Checks every rate is within `0.0..=1.0`.
    pub fn validate(&self) -> Result<(), String> {
        for (name, rate) in [
            ("errorRate", self.error_rate),
            ("dropRate", self.drop_rate),
            ("malformedRate", self.malformed_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(format!("{name} must be between 0 and 1"));
            }
        }
        Ok(())
    }
}

/// The fault a request got, kept in its record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// Answered 500 / 8000.
    Error,
    /// Connection closed without an answer.
    Drop,
    /// Answered 200 with a body that is not JSON.
    Malformed,
}

/// The current faults and the RNG that draws them.
#[derive(Debug)]
pub(crate) struct FaultInjector {
    inner: Mutex<(Faults, StdRng)>,
}

impl FaultInjector {
    pub fn new(faults: Faults) -> Self {
        let rng = rng_for(&faults);
        Self {
            inner: Mutex::new((faults, rng)),
        }
    }

    pub fn set(&self, faults: Faults) {
        let rng = rng_for(&faults);
        *self.inner.lock() = (faults, rng);
    }

    pub fn get(&self) -> Faults {
        self.inner.lock().0.clone()
    }

    /// The latency to add before every `/v3` answer.
    pub fn latency(&self) -> Duration {
        self.inner.lock().0.latency
    }

    /// Draws the fault, if any, for one request the rate limiter admitted.
    pub fn draw(&self) -> Option<FaultKind> {
        let mut guard = self.inner.lock();
        let (faults, rng) = &mut *guard;
        let mut hit = |rate: f64| rate > 0.0 && rng.random::<f64>() < rate;
        if hit(faults.drop_rate) {
            Some(FaultKind::Drop)
        } else if hit(faults.error_rate) {
            Some(FaultKind::Error)
        } else if hit(faults.malformed_rate) {
            Some(FaultKind::Malformed)
        } else {
            None
        }
    }
}

fn rng_for(faults: &Faults) -> StdRng {
    match faults.seed {
        Some(seed) => StdRng::seed_from_u64(seed),
        None => StdRng::from_os_rng(),
    }
}

/// The JSON form of [`Faults`] on `GET|PUT /_simulator/faults`; absent fields mean zero.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub(crate) struct FaultsJson {
    pub error_rate: f64,
    pub latency_ms: u64,
    pub drop_rate: f64,
    pub malformed_rate: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
}

impl From<&Faults> for FaultsJson {
    fn from(f: &Faults) -> Self {
        Self {
            error_rate: f.error_rate,
            latency_ms: u64::try_from(f.latency.as_millis()).unwrap_or(u64::MAX),
            drop_rate: f.drop_rate,
            malformed_rate: f.malformed_rate,
            seed: f.seed,
        }
    }
}

impl From<FaultsJson> for Faults {
    fn from(j: FaultsJson) -> Self {
        Self {
            error_rate: j.error_rate,
            latency: Duration::from_millis(j.latency_ms),
            drop_rate: j.drop_rate,
            malformed_rate: j.malformed_rate,
            seed: j.seed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seeded_injector_repeats_its_sequence() {
        let faults = Faults {
            error_rate: 0.5,
            seed: Some(7),
            ..Faults::none()
        };
        let draws = |inj: &FaultInjector| (0..32).map(|_| inj.draw()).collect::<Vec<_>>();
        let a = draws(&FaultInjector::new(faults.clone()));
        let b = draws(&FaultInjector::new(faults));
        assert_eq!(a, b);
        assert!(a.contains(&Some(FaultKind::Error)) && a.contains(&None));
    }
}
