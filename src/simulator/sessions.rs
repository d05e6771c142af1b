//! Unify and Verify sessions: their state machine, their 15-minute expiry, and the answers each
//! status step gives in each state.
//!
//! The rules, from Prove's docs where they speak and decided here where they don't:
//! * A session belongs to the client ID that started it; for any other client, and once it is
//!   15 minutes old, its correlation ID answers 403 / 8008.
//! * A step that is not next answers 403 / 8003 (bind before `possession_required`, a Verify
//!   status on a Unify session, ...).
//! * Replay: a step that gave a final answer (`true`, `false`, `possession_required`) cannot be
//!   repeated (403 / 8003). Verify's `pending` answer is not final and may be polled.
//! * Unify status before possession completes is a final `false` (Prove: "false if the client
//!   SDK Authenticate() was not called"), except for short-term users, who pass without it.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, SystemTime};

use parking_lot::Mutex;

use super::Product;
use super::clock::elapsed;
use super::error::{ApiError, SimulatorError};
use super::models::{UnifyStatusResponse, VerifyStatusResponse, evaluation};
use super::sandbox::{Behaviour, SandboxUser};
use super::validate::PossessionType;

/// A session (and its correlation ID and auth token) lives 15 minutes from its start.
pub(crate) const SESSION_TTL: Duration = Duration::from_secs(15 * 60);
/// OTP: two minutes from the SMS (sent when the session starts) to code entry.
const OTP_WINDOW: Duration = Duration::from_secs(2 * 60);
/// Instant Link: three minutes from the SMS to the click.
const INSTANT_LINK_WINDOW: Duration = Duration::from_secs(3 * 60);
/// The one OTP the sandbox accepts.
const SANDBOX_OTP: &str = "1234";
/// OTP attempts with `allowOTPRetry=true` ("re-enter the OTP up to three times"); without it,
/// one.
const OTP_ATTEMPTS_WITH_RETRY: u8 = 3;

/// What the end user does on their device, standing in for the client SDK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PossessionAction {
    /// The client SDK's `Authenticate()` succeeds (Prove Key on mobile, or any flow).
    Authenticate,
    /// Mobile OTP fallback: `"1234"` passes, anything else fails.
    Otp(String),
    /// Desktop Instant Link clicked.
    InstantLink,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Possession {
    Pending,
    Passed,
    Failed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Started; the status step has not given a final answer.
    Started,
    /// Unify status answered `possession_required`; only bind may follow.
    AwaitingBind,
    /// A final answer was given; every further step is out of order.
    Finished,
}

/// One session.
#[derive(Debug)]
pub(crate) struct Session {
    product: Product,
    client_id: String,
    started: SystemTime,
    user: &'static SandboxUser,
    possession_type: PossessionType,
    /// As the client sent it to /v3/unify or /v3/verify.
    phone_number: String,
    client_request_id: Option<String>,
    client_human_id: Option<String>,
    allow_otp_retry: bool,
    otp_attempts: u8,
    possession: Possession,
    stage: Stage,
}

/// What a session starts from.
#[derive(Debug)]
pub(crate) struct NewSession {
    pub product: Product,
    pub client_id: String,
    pub user: &'static SandboxUser,
    pub possession_type: PossessionType,
    pub phone_number: String,
    pub client_request_id: Option<String>,
    pub client_human_id: Option<String>,
    pub allow_otp_retry: bool,
}

impl Session {
    /// `/v3/unify-status`. `client_request_id` is the status request's own, echoed in
    /// preference to the one /v3/unify got.
    pub fn unify_status(
        &mut self,
        client_request_id: Option<String>,
    ) -> Result<UnifyStatusResponse, ApiError> {
        if self.product != Product::Unify || self.stage != Stage::Started {
            return Err(ApiError::out_of_order());
        }
        let client_request_id = client_request_id.or_else(|| self.client_request_id.clone());
        let phone_number = Some(self.phone_number.clone());
        if self.possession_type == PossessionType::None {
            self.stage = Stage::AwaitingBind;
            return Ok(UnifyStatusResponse {
                success: "possession_required",
                phone_number,
                client_request_id,
                ..UnifyStatusResponse::default()
            });
        }
        self.stage = Stage::Finished;
        let short_term = self.user.behaviour == Behaviour::ShortTerm;
        let passed = match self.possession {
            Possession::Passed => true,
            Possession::Failed => false,
            Possession::Pending => short_term,
        };
        if !passed {
            return Ok(UnifyStatusResponse {
                success: "false",
                phone_number,
                client_request_id,
                evaluation: evaluation(&[("authentication", false), ("risk", true)]),
                ..UnifyStatusResponse::default()
            });
        }
        // Desktop (Instant Link) places no Prove Key, and short-term users never get one.
        let has_key = self.possession_type == PossessionType::Mobile && !short_term;
        Ok(UnifyStatusResponse {
            success: "true",
            phone_number,
            prove_id: Some(self.user.prove_id()),
            device_id: has_key.then(|| self.user.device_id()),
            client_human_id: self.client_human_id.clone(),
            client_request_id,
            evaluation: evaluation(&[("authentication", true), ("risk", true)]),
        })
    }

    /// `/v3/unify-bind`, allowed once, right after `possession_required`. A number that is not
    /// the session's answers 200 `success=false` (Prove: "bind fails if the phone number does
    /// not match the test user"), which also ends the session.
    pub fn unify_bind(
        &mut self,
        phone_e164: &str,
        phone_number: &str,
        client_request_id: Option<String>,
    ) -> Result<UnifyStatusResponse, ApiError> {
        if self.product != Product::Unify || self.stage != Stage::AwaitingBind {
            return Err(ApiError::out_of_order());
        }
        self.stage = Stage::Finished;
        let client_request_id = client_request_id.or_else(|| self.client_request_id.clone());
        let bound =
            phone_e164 == self.user.e164 && self.user.behaviour != Behaviour::PossessionFails;
        if !bound {
            return Ok(UnifyStatusResponse {
                success: "false",
                client_request_id,
                ..UnifyStatusResponse::default()
            });
        }
        Ok(UnifyStatusResponse {
            success: "true",
            phone_number: Some(phone_number.to_owned()),
            prove_id: Some(self.user.prove_id()),
            device_id: (self.user.behaviour != Behaviour::ShortTerm).then(|| self.user.device_id()),
            client_human_id: self.client_human_id.clone(),
            client_request_id,
            // Prove: evaluation on bind is "upcoming, not yet enabled".
            evaluation: None,
        })
    }

    /// `/v3/verify-status`. `pending` until possession completes (pollable); then one final
    /// answer.
    pub fn verify_status(&mut self) -> Result<VerifyStatusResponse, ApiError> {
        if self.product != Product::Verify || self.stage != Stage::Started {
            return Err(ApiError::out_of_order());
        }
        let possession = match (self.possession_type, self.possession) {
            (PossessionType::None, _) => None,
            (_, Possession::Pending) => {
                return Ok(VerifyStatusResponse {
                    success: "pending",
                    possession_result: "pending",
                    verify_result: "pending",
                    identity_id: None,
                    evaluation: None,
                });
            }
            (_, p) => Some(p == Possession::Passed),
        };
        self.stage = Stage::Finished;
        Ok(verify_outcome(self.user, possession))
    }

    fn complete_possession(
        &mut self,
        action: &PossessionAction,
        now: SystemTime,
    ) -> Result<(), SimulatorError> {
        if self.possession_type == PossessionType::None {
            return Err(SimulatorError::PossessionNotApplicable);
        }
        if self.stage != Stage::Started || self.possession != Possession::Pending {
            return Err(SimulatorError::AlreadyCompleted);
        }
        let age = elapsed(self.started, now);
        let in_time = match (action, self.possession_type) {
            (PossessionAction::Otp(_), PossessionType::Desktop)
            | (PossessionAction::InstantLink, PossessionType::Mobile) => {
                return Err(SimulatorError::WrongAction(self.possession_type.as_str()));
            }
            (PossessionAction::Otp(_), _) => age <= OTP_WINDOW,
            (PossessionAction::InstantLink, _) => age <= INSTANT_LINK_WINDOW,
            (PossessionAction::Authenticate, _) => true,
        };
        let code_ok = match action {
            PossessionAction::Otp(code) => {
                self.otp_attempts += 1;
                let wrong = code != SANDBOX_OTP;
                if wrong && self.allow_otp_retry && self.otp_attempts < OTP_ATTEMPTS_WITH_RETRY {
                    // The user may type the code again; possession stays pending.
                    return Ok(());
                }
                !wrong
            }
            _ => true,
        };
        let passed = in_time && code_ok && self.user.behaviour != Behaviour::PossessionFails;
        self.possession = if passed {
            Possession::Passed
        } else {
            Possession::Failed
        };
        Ok(())
    }
}

/// The final Verify answer for `user`; `possession` is `None` for possessionType=none
/// (Prove's `not_applicable`), else whether possession passed.
pub(crate) fn verify_outcome(user: &SandboxUser, possession: Option<bool>) -> VerifyStatusResponse {
    let verified = user.behaviour != Behaviour::VerifyFails;
    let (success, possession_result, verify_result, eval) = match possession {
        Some(false) => (
            "false",
            "failed",
            "not_applicable",
            evaluation(&[("authentication", false)]),
        ),
        Some(true) => (
            if verified { "true" } else { "false" },
            "success",
            if verified { "success" } else { "failed" },
            evaluation(&[("authentication", true), ("identification", verified)]),
        ),
        None => (
            if verified { "true" } else { "false" },
            "not_applicable",
            if verified { "success" } else { "failed" },
            evaluation(&[("identification", verified)]),
        ),
    };
    VerifyStatusResponse {
        success,
        possession_result,
        verify_result,
        identity_id: (success == "true").then(|| user.identity_id()),
        evaluation: eval,
    }
}

/// Every live session, by correlation ID.
#[derive(Debug, Default)]
pub(crate) struct SessionStore {
    sessions: Mutex<Sessions>,
}

/// The sessions, and their IDs in the order they started, so expired ones are found at the
/// front without scanning the map (a scan per start made the simulator slower the longer a
/// load test ran).
#[derive(Debug, Default)]
struct Sessions {
    by_id: HashMap<String, Session>,
    by_start: VecDeque<(SystemTime, String)>,
}

impl SessionStore {
    /// Starts a session at `now` and returns its correlation ID (a lowercase UUIDv4). Expired
    /// sessions are dropped here so the map stays small.
    pub fn start(&self, new: NewSession, now: SystemTime) -> String {
        let id = uuid::Uuid::new_v4().to_string();
        let session = Session {
            product: new.product,
            client_id: new.client_id,
            started: now,
            user: new.user,
            possession_type: new.possession_type,
            phone_number: new.phone_number,
            client_request_id: new.client_request_id,
            client_human_id: new.client_human_id,
            allow_otp_retry: new.allow_otp_retry,
            otp_attempts: 0,
            possession: Possession::Pending,
            stage: Stage::Started,
        };
        let mut sessions = self.sessions.lock();
        while let Some((started, _)) = sessions.by_start.front() {
            if elapsed(*started, now) < SESSION_TTL {
                break;
            }
            if let Some((_, old)) = sessions.by_start.pop_front() {
                sessions.by_id.remove(&old);
            }
        }
        sessions.by_start.push_back((now, id.clone()));
        sessions.by_id.insert(id.clone(), session);
        id
    }

    /// Runs `step` on the live session `id` of `client_id`, or answers 403 / 8008.
    pub fn step<T>(
        &self,
        client_id: &str,
        id: &str,
        now: SystemTime,
        step: impl FnOnce(&mut Session) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let mut sessions = self.sessions.lock();
        let session = sessions
            .by_id
            .get_mut(id)
            .filter(|s| s.client_id == client_id)
            .ok_or_else(ApiError::invalid_correlation)?;
        if elapsed(session.started, now) >= SESSION_TTL {
            // Its entry in `by_start` goes when the sweep reaches it.
            sessions.by_id.remove(id);
            return Err(ApiError::invalid_correlation());
        }
        step(session)
    }

    /// The end user's device completing (or failing) possession for session `id`.
    pub fn complete_possession(
        &self,
        id: &str,
        action: &PossessionAction,
        now: SystemTime,
    ) -> Result<(), SimulatorError> {
        let mut sessions = self.sessions.lock();
        let session = sessions
            .by_id
            .get_mut(id)
            .ok_or(SimulatorError::UnknownSession)?;
        if elapsed(session.started, now) >= SESSION_TTL {
            return Err(SimulatorError::SessionExpired);
        }
        session.complete_possession(action, now)
    }
}
