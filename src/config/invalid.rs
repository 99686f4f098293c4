//! Why one piece of configuration (a handler's, a section's) is refused: the field it is about
//! and what is wrong with it. Its `Display` is what the operator reads in Envoy's log, after
//! the rule and handler that `ConfigError` names.

use crate::template::TemplateError;
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// Dotted path inside the handler or section; empty for the whole of it.
    pub field: String,
    pub kind: Kind,
}

/// What is wrong with a field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// Not the shape the handler reads (serde's words: unknown key, wrong type, missing key).
    Shape(String),
    /// Required, and absent or empty.
    Missing,
    NotADuration(String),
    /// A duration under the field's minimum, which is given in words.
    TooShort {
        value: String,
        minimum: &'static str,
    },
    NotAbsoluteUrl(String),
    NotHttp(String),
    NoHost(String),
    /// No `clusters` entry for the URL's origin.
    NoCluster {
        url: String,
        origin: String,
    },
    NotAHeaderName(String),
    NotAHeader(String),
    Template(TemplateError),
    /// A value outside the names the field accepts (listed in words).
    NotOneOf {
        value: String,
        accepted: String,
    },
    /// A handler name this build does not know, and those it does.
    UnknownHandler {
        name: String,
        known: String,
    },
    /// A handler the configuration names but did not enable.
    Disabled {
        section: String,
        name: String,
    },
    NotAbsolutePath(String),
    /// A fixed explanation: where the field belongs, what to do instead, what it must match.
    Explained(&'static str),
    /// What a parser of the field said (a GJSON path, a key document, a CIDR).
    Parse(String),
}

impl Invalid {
    pub fn new(field: impl Into<String>, kind: Kind) -> Invalid {
        Invalid {
            field: field.into(),
            kind,
        }
    }

    /// A problem with the whole handler or section.
    pub fn whole(kind: Kind) -> Invalid {
        Invalid::new(String::new(), kind)
    }

    /// serde's complaint about the config's shape.
    pub fn shape(e: impl fmt::Display) -> Invalid {
        Invalid::whole(Kind::Shape(e.to_string()))
    }

    /// The same problem, seen from one level up: `field` goes in front of the path.
    pub fn at(mut self, field: &str) -> Invalid {
        self.field = if self.field.is_empty() {
            field.to_string()
        } else {
            format!("{field}.{}", self.field)
        };
        self
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        match &self.kind {
            Kind::Shape(e) => f.write_str(e),
            Kind::Missing => f.write_str("must be set"),
            Kind::NotADuration(v) => write!(f, "{v:?} is not a duration"),
            Kind::TooShort { value, minimum } => {
                write!(f, "{value:?} is not a duration of at least {minimum}")
            }
            Kind::NotAbsoluteUrl(url) => write!(f, "{url:?} is not an absolute URL"),
            Kind::NotHttp(url) => write!(f, "{url:?}: only http and https URLs can be called"),
            Kind::NoHost(url) => write!(f, "{url:?} has no host, or has credentials in it"),
            Kind::NoCluster { url, origin } => write!(
                f,
                "no clusters entry for {url:?}; add \"{origin}\" with the Envoy cluster that serves it"
            ),
            Kind::NotAHeaderName(name) => write!(f, "{name:?} is not a valid header name"),
            Kind::NotAHeader(name) => write!(f, "{name:?} is not a valid header"),
            Kind::Template(e) => write!(f, "{e}"),
            Kind::NotOneOf { value, accepted } => write!(f, "{value:?} is not {accepted}"),
            Kind::UnknownHandler { name, known } => {
                write!(f, "unknown handler {name:?}; known: {known}")
            }
            Kind::Disabled { section, name } => write!(
                f,
                "handler {name:?} is disabled; set {section}.{name}.enabled: true"
            ),
            Kind::NotAbsolutePath(p) => write!(f, "{p:?} is not an absolute path"),
            Kind::Explained(text) => f.write_str(text),
            Kind::Parse(e) => f.write_str(e),
        }
    }
}

impl std::error::Error for Invalid {}

impl From<Kind> for Invalid {
    fn from(kind: Kind) -> Invalid {
        Invalid::whole(kind)
    }
}

impl From<TemplateError> for Kind {
    fn from(e: TemplateError) -> Kind {
        Kind::Template(e)
    }
}
