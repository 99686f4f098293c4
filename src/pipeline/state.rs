//! What a decided request leaves in Envoy's filter state for the access log and RBAC
//! (`Effect::FilterState`, read as `wasm.portcullis.<key>`): the subject, the rule, the
//! decision, the authenticator that settled the chain, and the operator's `filter_state` keys.
//! Never a credential: the operator's templates see the session without any header (neither
//! the request's nor those the authorizer and mutators set).

use crate::filter::Filter;
use crate::vocab::effect::{valid_header_value, Effect};
use crate::vocab::rejection::PipelineError;
use crate::vocab::request::Headers;
use crate::vocab::session::{MatchContext, Session};
use std::borrow::Cow;
use std::sync::Arc;

/// A filter-state value that would carry a control character (its key).
#[derive(Debug)]
struct Unsafe(String);

impl std::fmt::Display for Unsafe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "filter state {:?} would carry a control character; refusing to forward",
            self.0
        )
    }
}

impl std::error::Error for Unsafe {}

fn fact(key: &'static str, value: &str) -> Effect {
    Effect::FilterState(Cow::Borrowed(key), Cow::Owned(value.to_string()))
}

/// A fact whose value is fixed too.
fn fixed(key: &'static str, value: &'static str) -> Effect {
    Effect::FilterState(Cow::Borrowed(key), Cow::Borrowed(value))
}

/// Adds the facts of an allowed request to `effects`. An error (the request is refused, as a
/// header that cannot travel is) when a value would carry a control character or a template
/// fails.
pub fn allowed(
    filter: &Filter,
    rule: &str,
    authenticator: Option<&'static str>,
    session: &Session<'_>,
    effects: &mut Vec<Effect>,
) -> Result<(), PipelineError> {
    let refuse = |key: &str| PipelineError::internal(Unsafe(key.to_string()));
    if !valid_header_value(&session.subject) {
        return Err(refuse("subject"));
    }
    effects.push(fact("subject", &session.subject));
    effects.push(fact("rule", rule));
    effects.push(fixed("decision", "allow"));
    effects.extend(authenticator.map(|a| fixed("authenticator", a)));
    if filter.state_keys.is_empty() {
        return Ok(());
    }
    let no_headers = Headers::default();
    let bare = Session {
        subject: session.subject.clone(),
        extra: Arc::clone(&session.extra),
        header: Headers::default(),
        match_context: MatchContext {
            header: &no_headers,
            ..session.match_context.clone()
        },
    };
    for key in &filter.state_keys {
        let value = key.template.render(&bare).map_err(|e| {
            PipelineError::internal(e.rendering(format!("filter state {:?}", key.name)))
        })?;
        if !valid_header_value(&value) {
            return Err(refuse(&key.name));
        }
        effects.push(Effect::FilterState(
            Cow::Owned(key.name.clone()),
            Cow::Owned(value),
        ));
    }
    Ok(())
}

/// The facts of a refused request: its rule when one matched, the decision, and who had
/// authenticated when the refusal came later (a subject that cannot travel is left out).
pub fn denied(rule: Option<&str>, authenticated: Option<(&'static str, &str)>) -> Vec<Effect> {
    let mut effects = Vec::with_capacity(4);
    effects.extend(rule.map(|r| fact("rule", r)));
    effects.push(fixed("decision", "deny"));
    if let Some((authenticator, subject)) = authenticated {
        effects.push(fixed("authenticator", authenticator));
        if valid_header_value(subject) {
            effects.push(fact("subject", subject));
        }
    }
    effects
}
