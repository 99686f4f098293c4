//! What forwarding an allowed request changes: the identity headers the handlers set, the
//! spoofable ones a client sent (other rules' identity headers, and their underscore spellings),
//! and the path and method the upstream must read as they were matched.

use super::matched::Matched;
use crate::filter::Rule;
use crate::vocab::effect::{self, Effect};
use crate::vocab::rejection::PipelineError;
use crate::vocab::session::Session;

/// Adds the effects that forward the request to `effects`, ending in `Continue`; an error
/// when a header the handlers set cannot travel.
pub fn effects(
    matched: &Matched,
    rule: &Rule,
    session: &Session<'_>,
    effects: &mut Vec<Effect>,
) -> Result<(), PipelineError> {
    for (name, value) in session.header.iter() {
        if !effect::valid_header_name(name) || !effect::valid_header_value(value) {
            return Err(PipelineError::internal(Untravelled(name.to_string())));
        }
        effects.push(Effect::SetHeader(name.to_string(), value.to_string()));
    }
    for name in &rule.strip {
        if matched.request.headers.contains(name) {
            effects.push(Effect::RemoveHeader(name.clone()));
        }
    }
    // CGI-style upstreams read `x_user_id` as `x-user-id`: a client's underscore spelling
    // of an identity header goes too.
    for (name, _) in matched.request.headers.iter() {
        if name.contains('_') && !session.header.contains(name) {
            let dashed = name.replace('_', "-");
            if rule.strip.contains(&dashed) || session.header.contains(&dashed) {
                effects.push(Effect::RemoveHeader(name.to_string()));
            }
        }
    }
    if let Some(p) = &matched.rewrite {
        effects.push(Effect::SetHeader(":path".to_string(), p.clone()));
    }
    if matched.request.method_rewritten {
        let method = matched.request.method.clone();
        effects.push(Effect::SetHeader(":method".to_string(), method));
    }
    effects.push(Effect::Continue);
    Ok(())
}

/// A header a handler set that cannot travel: not a token name, or a value with a control
/// character.
#[derive(Debug)]
pub struct Untravelled(String);

impl std::fmt::Display for Untravelled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "header {:?} is not a valid header name or would carry a control character; refusing to forward",
            self.0
        )
    }
}

impl std::error::Error for Untravelled {}
