//! Black-box tests of the embedded Prove simulator over real HTTP: one binary, one module per
//! concern (zero2prod's layout). Every test starts its own simulator on a free loopback port
//! with a manual clock, so expiry is crossed by advancing time rather than sleeping.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod control;
mod errors;
mod faults;
mod helpers;
mod rate_limit;
mod records;
mod sessions;
mod token;
mod unify;
mod verify;
