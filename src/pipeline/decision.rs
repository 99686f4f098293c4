//! The outcome of one request, as the decision log line and stats see it.

use serde_json::json;
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub rule: Option<Arc<str>>,
    /// The local reply's status; `None` when the request was forwarded.
    pub status: Option<u32>,
    /// Oathkeeper's reason id where one exists (`authentication_handler_no_match`, …).
    pub reason: &'static str,
    /// Why, in words (a rejection's reason); never a credential.
    pub detail: Option<String>,
    /// Who was let through; logged only with `log.leak_sensitive_values`.
    pub subject: Option<String>,
    /// The authenticator that settled the chain, when one did.
    pub authenticator: Option<&'static str>,
    /// Callouts this request made.
    pub callouts: u32,
    pub started_ms: u64,
}

impl Decision {
    pub fn allowed(&self) -> bool {
        self.status.is_none()
    }

    /// One JSON object per decision.
    pub fn log_line(&self, now_ms: u64, leak_sensitive_values: bool) -> String {
        let mut line = json!({
            "msg": "decision",
            "rule": self.rule.as_deref(),
            "decision": if self.allowed() { "allow" } else { "deny" },
            "status": self.status,
            "reason_id": self.reason,
            "callouts": self.callouts,
            "duration_ms": now_ms.saturating_sub(self.started_ms),
        });
        if let (Some(detail), Some(obj)) = (&self.detail, line.as_object_mut()) {
            obj.insert("reason".into(), json!(detail));
        }
        if let (true, Some(subject), Some(obj)) =
            (leak_sensitive_values, &self.subject, line.as_object_mut())
        {
            obj.insert("subject".into(), json!(subject));
        }
        line.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed() -> Decision {
        Decision {
            rule: Some(Arc::from("echo")),
            status: None,
            reason: "allowed",
            detail: None,
            subject: Some("alice".into()),
            authenticator: Some("noop"),
            callouts: 1,
            started_ms: 1000,
        }
    }

    #[test]
    fn subjects_appear_only_when_asked() {
        let quiet: serde_json::Value =
            serde_json::from_str(&allowed().log_line(1012, false)).unwrap();
        assert_eq!(
            quiet,
            json!({"msg": "decision", "rule": "echo", "decision": "allow", "status": null,
                   "reason_id": "allowed", "callouts": 1, "duration_ms": 12})
        );
        let leaky: serde_json::Value =
            serde_json::from_str(&allowed().log_line(1012, true)).unwrap();
        assert_eq!(leaky["subject"], "alice");
    }
}
