//! Why a request was not forwarded: the error kinds of the pipeline, with Oathkeeper's status
//! codes and messages (herodot's `DefaultError`).

/// Every way the pipeline can refuse a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PipelineError {
    /// The request itself cannot be matched safely (bad path, missing `:authority`, …).
    BadRequest(String),
    /// No authenticator was responsible, or one rejected the credentials.
    Unauthorized(Option<String>),
    /// The credentials are valid but not sufficient.
    Forbidden(Option<String>),
    /// No rule matches the request.
    NoRule,
    /// The session store or IdP rate-limited us; its rate-limit headers go to the client.
    TooManyRequests(Vec<(String, String)>),
    /// More than one rule matches the request.
    ManyRules,
    /// A handler failed (template error, bad callout answer, …).
    Internal(String),
    /// A dependency (session store, JWKS) could not be reached or answered garbage.
    Unavailable(String),
    /// A token endpoint's status Oathkeeper hands on as it is (404, 504).
    Upstream(u32, String),
}

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
    pub fn message(&self) -> &str {
        match self {
            PipelineError::BadRequest(m)
            | PipelineError::Internal(m)
            | PipelineError::Unavailable(m)
            | PipelineError::Upstream(_, m) => m,
            PipelineError::Unauthorized(_) => "Access credentials are invalid",
            PipelineError::Forbidden(_) => {
                "Access credentials are not sufficient to access this resource"
            }
            PipelineError::NoRule => "Requested url does not match any rules",
            PipelineError::TooManyRequests(_) => "Too many requests",
            PipelineError::ManyRules => "Expected exactly one rule but found multiple rules",
        }
    }

    pub fn reason(&self) -> Option<&str> {
        match self {
            PipelineError::Unauthorized(r) | PipelineError::Forbidden(r) => r.as_deref(),
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
