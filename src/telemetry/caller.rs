//! Who made an RPC, as a plain label. The RPC layer ([`super::GrpcTraceLayer`]) puts an empty
//! [`RpcCaller`] in each request's extensions; the server's access check, further down, fills it
//! in; the RPC's span (`caller`), metrics (`caller` label) and log line read it when the call
//! ends. Telemetry knows no more of callers than this label and whether a credential proved it.

use std::sync::Arc;

use parking_lot::Mutex;

/// The label of a call no caller was found for: refused for want of a valid credential, or a
/// call the access check does not look at (health, reflection). Never the presented identity,
/// so the label set stays bounded whatever clients send.
pub const NO_CALLER: &str = "unauthenticated";

/// The caller slot of one RPC (see the module docs). Clones share the slot.
#[derive(Debug, Clone, Default)]
pub struct RpcCaller(Arc<Mutex<Option<Label>>>);

#[derive(Debug, Clone)]
struct Label {
    name: Arc<str>,
    authenticated: bool,
}

impl RpcCaller {
    /// The call's caller proved who it is: every one of its calls gets its log line.
    pub fn authenticated(&self, name: Arc<str>) {
        *self.0.lock() = Some(Label {
            name,
            authenticated: true,
        });
    }

    /// The call is counted under `name`, but no credential proved it (a gateway that runs
    /// open): like refused calls, its failures are logged a few lines a second at most.
    pub fn unverified(&self, name: Arc<str>) {
        *self.0.lock() = Some(Label {
            name,
            authenticated: false,
        });
    }

    /// The label, and whether a credential proved it; [`NO_CALLER`] when nobody filled it in.
    pub fn label(&self) -> (Arc<str>, bool) {
        match &*self.0.lock() {
            Some(label) => (label.name.clone(), label.authenticated),
            None => (Arc::from(NO_CALLER), false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_slot_is_no_caller_and_clones_share_what_is_filled_in() {
        let slot = RpcCaller::default();
        assert_eq!(slot.label(), (Arc::from(NO_CALLER), false));
        let below = slot.clone();
        below.unverified(Arc::from("anonymous"));
        assert_eq!(slot.label(), (Arc::from("anonymous"), false));
        below.authenticated(Arc::from("checkout"));
        assert_eq!(slot.label(), (Arc::from("checkout"), true));
    }
}
