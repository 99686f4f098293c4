//! What an authenticator answers for one request, and how it goes on after a call.

use super::Ctx;
use crate::cache::session::Key;
use crate::vocab::callout::{Callout, CalloutResult};
use crate::vocab::rejection::PipelineError;
use crate::vocab::stats::Outcome as Counted;
use std::sync::Arc;

/// What an authenticator decided, or what it needs to decide.
#[derive(Debug)]
pub enum AuthnStep {
    NotResponsible,
    Authenticated {
        subject: String,
        extra: Arc<serde_json::Value>,
    },
    Rejected(PipelineError),
    /// Make this call; its answer goes to the continuation.
    Call(Callout, Then),
    /// Another request is making the same call; start again when woken.
    Wait,
}

/// An authenticator's continuation: what it does with its call's answer. It owns everything it
/// needs (the handler, what it read from the request), so resuming recomputes nothing.
pub struct Then {
    /// The single-flight key this request leads: when the request goes away first, requests
    /// parked behind it are woken to ask themselves.
    pub leads: Key,
    resume: Box<Resume>,
}

type Resume = dyn FnOnce(CalloutResult, &mut Ctx<'_>) -> AuthnStep;

impl Then {
    pub fn new(
        leads: Key,
        resume: impl FnOnce(CalloutResult, &mut Ctx<'_>) -> AuthnStep + 'static,
    ) -> Then {
        Then {
            leads,
            resume: Box::new(resume),
        }
    }

    pub fn resume(self, result: CalloutResult, ctx: &mut Ctx<'_>) -> AuthnStep {
        (self.resume)(result, ctx)
    }
}

impl std::fmt::Debug for Then {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Then").field("leads", &self.leads).finish()
    }
}

impl AuthnStep {
    /// The outcome a step settles, for stats; `None` while it still waits for a callout.
    pub fn outcome(&self) -> Option<Counted> {
        Some(match self {
            AuthnStep::Authenticated { .. } => Counted::Responsible,
            AuthnStep::NotResponsible => Counted::NotResponsible,
            AuthnStep::Rejected(
                PipelineError::Unauthorized(_)
                | PipelineError::Forbidden(_)
                | PipelineError::TooManyRequests(_),
            ) => Counted::Rejected,
            AuthnStep::Rejected(_) => Counted::Error,
            AuthnStep::Call(..) | AuthnStep::Wait => return None,
        })
    }
}
