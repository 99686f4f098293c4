//! A request that matched a rule, kept across calls, and the identity its handlers build.

use crate::filter::Rule;
use crate::vocab::request::{Headers, Request};
use crate::vocab::session::{MatchContext, Query, Session, Url};
use std::sync::Arc;

/// A request that matched a rule, kept across callouts.
pub struct Matched {
    pub request: Request,
    pub rule: Arc<Rule>,
    pub captures: Vec<String>,
    pub path: String,
    pub query: String,
    pub rewrite: Option<String>,
}

impl Matched {
    pub fn url(&self) -> Url<'_> {
        Url {
            scheme: &self.request.scheme,
            host: &self.request.authority,
            path: &self.path,
            query: Query(&self.query),
        }
    }
}

/// The parts of the authentication session that outlive a call.
pub struct Identity {
    pub subject: String,
    pub extra: Arc<serde_json::Value>,
    pub header: Headers,
}

/// The authentication session templates see: the identity moved in, the request borrowed.
pub fn session(matched: &Matched, id: Identity) -> Session<'_> {
    Session {
        subject: id.subject,
        extra: id.extra,
        header: id.header,
        match_context: MatchContext {
            captures: &matched.captures,
            url: matched.url(),
            method: &matched.request.method,
            header: &matched.request.headers,
        },
    }
}

/// The identity moved back out of a session.
pub fn identity(session: Session<'_>) -> Identity {
    Identity {
        subject: session.subject,
        extra: session.extra,
        header: session.header,
    }
}
