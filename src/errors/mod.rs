//! Error handling: the pipeline's error kinds, and choosing and running the error handler that
//! answers the client (rule-level handlers first, then `errors.fallback`).

pub mod json;
pub mod redirect;
pub mod remote_ip;
pub mod when;
pub mod www_authenticate;

use crate::config::{Invalid, Kind};
use crate::vocab::effect::{valid_header_name, valid_header_value, Reply};
use crate::vocab::rejection::PipelineError;
use crate::vocab::request::Request;
use serde::Deserialize;
use when::When;

/// Why no configured error handler could answer (Oathkeeper's texts): a 500 instead.
#[derive(Debug)]
pub enum Unanswerable {
    /// A dependency's rate-limit header, the one part of a reply the config does not fix.
    ControlCharacter,
    ManyHandlers,
    NoHandler,
}

impl std::fmt::Display for Unanswerable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Unanswerable::ControlCharacter => "an error reply header would carry a control character",
            Unanswerable::ManyHandlers => "Found more than one error handlers to be responsible for this request. This is a configuration error.",
            Unanswerable::NoHandler => "Unable to handle HTTP request because no matching error handling strategy was found. This is a configuration error.",
        })
    }
}

impl std::error::Error for Unanswerable {}

#[derive(Debug, Clone)]
pub enum ErrorKind {
    Json { verbose: bool },
    Redirect(redirect::Redirect),
    WwwAuthenticate { realm: String },
}

/// One configured error handler with its merged config.
#[derive(Debug, Clone)]
pub struct ErrorHandler {
    pub name: String,
    pub kind: ErrorKind,
    pub when: Vec<When>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonConfig {
    #[serde(default)]
    verbose: bool,
    #[serde(default)]
    when: Vec<When>,
}

impl ErrorHandler {
    pub const NAMES: &'static [&'static str] = &["json", "redirect", "www_authenticate"];

    /// Builds a handler from its merged config; the error says what is wrong with it.
    pub fn from_config(name: &str, config: serde_json::Value) -> Result<ErrorHandler, Invalid> {
        let config = crate::config::merge::or_empty(config);
        let de = Invalid::shape;
        let (kind, when) = match name {
            "json" => {
                let c: JsonConfig = serde_json::from_value(config).map_err(de)?;
                (ErrorKind::Json { verbose: c.verbose }, c.when)
            }
            "redirect" => {
                let c: redirect::RedirectConfig = serde_json::from_value(config).map_err(de)?;
                (
                    ErrorKind::Redirect(redirect::Redirect::from_config(&c)?),
                    c.when,
                )
            }
            "www_authenticate" => {
                let c: www_authenticate::WwwAuthenticateConfig =
                    serde_json::from_value(config).map_err(de)?;
                if c.realm.bytes().any(|b| b.is_ascii_control()) {
                    return Err(Invalid::new(
                        "realm",
                        Kind::Explained("must not contain control characters"),
                    ));
                }
                (ErrorKind::WwwAuthenticate { realm: c.realm }, c.when)
            }
            other => {
                return Err(Invalid::whole(Kind::UnknownHandler {
                    name: other.to_string(),
                    known: Self::NAMES.join(", "),
                }))
            }
        };
        for w in &when {
            w.validate()?;
        }
        Ok(ErrorHandler {
            name: name.to_string(),
            kind,
            when,
        })
    }

    /// Whether a `when` condition needs the client's address.
    pub fn reads_remote_ip(&self) -> bool {
        self.when
            .iter()
            .any(|w| w.request.as_ref().is_some_and(|r| r.remote_ip.is_some()))
    }

    fn reply(
        &self,
        error: &PipelineError,
        request: Option<&Request>,
        url: &str,
        leak: bool,
    ) -> Reply {
        match &self.kind {
            ErrorKind::Json { verbose } => json::reply(
                error,
                *verbose,
                leak,
                request.and_then(|r| r.headers.get("x-request-id")),
            ),
            ErrorKind::Redirect(r) => r.reply(url, request),
            ErrorKind::WwwAuthenticate { realm } => www_authenticate::reply(realm),
        }
    }
}

/// Where an error is answered: the rule's handlers, the fallback ones, and whether replies may
/// carry personal data (`log.leak_sensitive_values`).
pub struct Handlers<'a> {
    pub rule: &'a [ErrorHandler],
    pub fallback: &'a [ErrorHandler],
    pub leak: bool,
}

/// Answers `error` with the handler `choose` picks; a reply whose headers could not travel
/// becomes a plain 500, never a split header.
pub fn respond(
    error: &PipelineError,
    request: Option<&Request>,
    current_url: &str,
    handlers: &Handlers<'_>,
) -> Reply {
    let reply = choose(error, request, current_url, handlers);
    let legal = reply
        .headers
        .iter()
        .all(|(k, v)| valid_header_name(k) && valid_header_value(v));
    if legal {
        return reply;
    }
    // A dependency's rate-limit header is the only part of a reply not fixed by the config.
    json::reply(
        &PipelineError::internal(Unanswerable::ControlCharacter),
        false,
        false,
        request.and_then(|r| r.headers.get("x-request-id")),
    )
}

/// The one responsible rule-level handler, else the first responsible fallback handler, else a
/// 500 (Oathkeeper's selection, `HandleError`).
fn choose(
    error: &PipelineError,
    request: Option<&Request>,
    current_url: &str,
    handlers: &Handlers<'_>,
) -> Reply {
    let request_id = request.and_then(|r| r.headers.get("x-request-id"));
    let mut responsible = handlers
        .rule
        .iter()
        .filter(|h| when::responsible(&h.when, error, request));
    if let Some(handler) = responsible.next() {
        if responsible.next().is_some() {
            return json::reply(
                &PipelineError::internal(Unanswerable::ManyHandlers),
                false,
                false,
                request_id,
            );
        }
        return handler.reply(error, request, current_url, handlers.leak);
    }
    match handlers
        .fallback
        .iter()
        .find(|h| when::responsible(&h.when, error, request))
    {
        Some(handler) => handler.reply(error, request, current_url, handlers.leak),
        None => json::reply(
            &PipelineError::internal(Unanswerable::NoHandler),
            false,
            false,
            request_id,
        ),
    }
}
