//! Why a request was not forwarded: the kinds of refusal, each with Oathkeeper's status code and
//! message (herodot's `DefaultError`), and the reason behind it. A reason is typed where it is
//! made: each handler has its own reason enum whose `Display` is Oathkeeper's text, and one
//! `From` impl beside it says which kind each reason is. The kind alone decides the status
//! (`code`), here and nowhere else.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

/// A reason, as the handler that refused typed it; `Display` is the text logs and verbose error
/// bodies carry.
pub type Reason = Arc<dyn std::error::Error + Send + Sync>;

/// A broken invariant of portcullis itself, never expected: the request is answered (500),
/// never forwarded.
#[derive(Debug)]
pub struct Bug(pub &'static str);

impl fmt::Display for Bug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for Bug {}

/// A reason about a token that parses, with its unverified claims: Oathkeeper's
/// `details.jwt_claims`. Claims are personal data: the `json` handler shows them only when
/// verbose and `log.leak_sensitive_values` allow.
#[derive(Debug)]
pub struct WithClaims {
    pub reason: Reason,
    pub claims: Arc<serde_json::Value>,
}

impl fmt::Display for WithClaims {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.reason.fmt(f)
    }
}

impl std::error::Error for WithClaims {}

/// Every way the pipeline can refuse a request.
#[derive(Debug, Clone)]
pub enum PipelineError {
    /// The request itself cannot be matched safely (bad path, missing `:authority`, …).
    BadRequest(Reason),
    /// No authenticator was responsible, or one rejected the credentials.
    Unauthorized(Option<Reason>),
    /// The credentials are valid but not sufficient.
    Forbidden(Option<Reason>),
    /// No rule matches the request.
    NoRule,
    /// The session store or IdP rate-limited us; its rate-limit headers go to the client.
    TooManyRequests(Vec<(String, String)>),
    /// More than one rule matches the request.
    ManyRules,
    /// A handler could not do its part: a template that fails, an answer it cannot use, a
    /// header that cannot travel.
    Internal(Reason),
    /// A dependency (session store, JWKS, an API) could not be reached or is down.
    Unavailable(Reason),
    /// A token endpoint's status Oathkeeper hands on as it is (404, 504).
    Upstream(u32, Reason),
}

impl PipelineError {
    pub fn bad_request(reason: impl std::error::Error + Send + Sync + 'static) -> PipelineError {
        PipelineError::BadRequest(Arc::new(reason))
    }

    pub fn unauthorized(reason: impl std::error::Error + Send + Sync + 'static) -> PipelineError {
        PipelineError::Unauthorized(Some(Arc::new(reason)))
    }

    pub fn forbidden(reason: impl std::error::Error + Send + Sync + 'static) -> PipelineError {
        PipelineError::Forbidden(Some(Arc::new(reason)))
    }

    pub fn internal(reason: impl std::error::Error + Send + Sync + 'static) -> PipelineError {
        PipelineError::Internal(Arc::new(reason))
    }

    pub fn unavailable(reason: impl std::error::Error + Send + Sync + 'static) -> PipelineError {
        PipelineError::Unavailable(Arc::new(reason))
    }

    pub fn upstream(
        code: u32,
        reason: impl std::error::Error + Send + Sync + 'static,
    ) -> PipelineError {
        PipelineError::Upstream(code, Arc::new(reason))
    }
}

/// Two refusals are the same when a client and a log could not tell them apart.
impl PartialEq for PipelineError {
    fn eq(&self, other: &PipelineError) -> bool {
        self.code() == other.code()
            && self.reason_id() == other.reason_id()
            && self.message() == other.message()
            && self.reason() == other.reason()
            && self.headers() == other.headers()
    }
}

impl fmt::Display for PipelineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())?;
        if let Some(reason) = self.reason() {
            write!(f, ": {reason}")?;
        }
        Ok(())
    }
}

impl std::error::Error for PipelineError {}

/// The rate-limit headers a dependency's 429 carries to the client.
const RATE_LIMIT_HEADERS: &[&str] = &[
    "retry-after",
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
    "x-ratelimit-type",
];

impl PipelineError {
    /// A dependency's 429, keeping the rate-limit headers of its answer.
    pub fn rate_limited(headers: Vec<(String, String)>) -> PipelineError {
        PipelineError::TooManyRequests(
            headers
                .into_iter()
                .filter(|(k, _)| RATE_LIMIT_HEADERS.contains(&k.to_ascii_lowercase().as_str()))
                .map(|(k, v)| (k.to_ascii_lowercase(), v))
                .collect(),
        )
    }

    pub fn code(&self) -> u32 {
        match self {
            PipelineError::BadRequest(_) => 400,
            PipelineError::Unauthorized(_) => 401,
            PipelineError::Forbidden(_) => 403,
            PipelineError::NoRule => 404,
            PipelineError::TooManyRequests(_) => 429,
            PipelineError::ManyRules | PipelineError::Internal(_) => 500,
            PipelineError::Unavailable(_) => 503,
            PipelineError::Upstream(code, _) => *code,
        }
    }

    /// The message verbose mode shows: the original error's own text.
    pub fn message(&self) -> Cow<'static, str> {
        match self {
            PipelineError::BadRequest(m)
            | PipelineError::Internal(m)
            | PipelineError::Unavailable(m)
            | PipelineError::Upstream(_, m) => Cow::Owned(m.to_string()),
            PipelineError::Unauthorized(_) => Cow::Borrowed("Access credentials are invalid"),
            PipelineError::Forbidden(_) => {
                Cow::Borrowed("Access credentials are not sufficient to access this resource")
            }
            PipelineError::NoRule => Cow::Borrowed("Requested url does not match any rules"),
            PipelineError::TooManyRequests(_) => Cow::Borrowed("Too many requests"),
            PipelineError::ManyRules => {
                Cow::Borrowed("Expected exactly one rule but found multiple rules")
            }
        }
    }

    /// Why credentials were refused (401, 403), when the handler said.
    pub fn reason(&self) -> Option<String> {
        match self {
            PipelineError::Unauthorized(r) | PipelineError::Forbidden(r) => {
                r.as_ref().map(|r| r.to_string())
            }
            _ => None,
        }
    }

    /// The unverified claims of the token refused, when the reason carries them.
    pub fn jwt_claims(&self) -> Option<&serde_json::Value> {
        match self {
            PipelineError::Unauthorized(Some(r)) | PipelineError::Forbidden(Some(r)) => {
                r.downcast_ref::<WithClaims>().map(|w| &*w.claims)
            }
            _ => None,
        }
    }

    /// Headers the error carries to the client (rate-limit headers of a 429).
    pub fn headers(&self) -> &[(String, String)] {
        match self {
            PipelineError::TooManyRequests(h) => h,
            _ => &[],
        }
    }

    /// Oathkeeper's `reason_id` for the decision log.
    pub fn reason_id(&self) -> &'static str {
        match self {
            PipelineError::BadRequest(_) => "bad_request",
            PipelineError::NoRule => "rule_no_match",
            PipelineError::ManyRules => "rule_many_matches",
            PipelineError::Unauthorized(_) | PipelineError::TooManyRequests(_) => {
                "authentication_handler_no_match"
            }
            PipelineError::Forbidden(_) => "authorization_handler_no_match",
            PipelineError::Internal(_) => "internal_error",
            PipelineError::Unavailable(_) => "dependency_unavailable",
            PipelineError::Upstream(..) => "dependency_status",
        }
    }
}

/// Go's `http.StatusText`, for the codes the pipeline produces.
pub fn status_text(code: u32) -> &'static str {
    match code {
        301 => "Moved Permanently",
        302 => "Found",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        409 => "Conflict",
        415 => "Unsupported Media Type",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "",
    }
}
