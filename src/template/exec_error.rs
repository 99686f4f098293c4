//! Why rendering a template failed: Go's `text/template` execution errors, in its words. The
//! handler that rendered it fails the request (a 500, as in Oathkeeper).

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecError {
    RangeOver(&'static str),
    EmptyCommand,
    ArgumentToNonFunction,
    NotAMethod(String),
    NoField {
        name: String,
        in_type: &'static str,
    },
    /// A method's or function's arguments: `name`, and what it wanted.
    Arguments {
        name: String,
        want: &'static str,
    },
    WrongArgCount {
        func: String,
        got: usize,
    },
    PrintfVerb,
    IndexOfNil,
    IndexType(&'static str),
    IndexNotInteger,
    IndexOutOfRange(String),
    LenOfType(&'static str),
    Incomparable,
    IncompatibleTypes(&'static str, &'static str),
}

impl fmt::Display for ExecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExecError::RangeOver(t) => write!(f, "range can't iterate over {t}"),
            ExecError::EmptyCommand => f.write_str("empty command"),
            ExecError::ArgumentToNonFunction => f.write_str("can't give argument to non-function"),
            ExecError::NotAMethod(name) => write!(f, "{name} is not a method but has arguments"),
            ExecError::NoField { name, in_type } => {
                write!(f, "can't evaluate field {name} in type {in_type}")
            }
            ExecError::Arguments { name, want } => write!(f, "{name} takes {want}"),
            ExecError::WrongArgCount { func, got } => {
                write!(f, "wrong number of args for {func}: got {got}")
            }
            ExecError::PrintfVerb => f.write_str("printf supports only %s, %v, %d, %q and %%"),
            ExecError::IndexOfNil => f.write_str("index of untyped nil"),
            ExecError::IndexType(t) => write!(f, "can't index item of type {t}"),
            ExecError::IndexNotInteger => f.write_str("cannot index slice with non-integer"),
            ExecError::IndexOutOfRange(i) => write!(f, "index out of range: {i}"),
            ExecError::LenOfType(t) => write!(f, "len of type {t}"),
            ExecError::Incomparable => f.write_str("incomparable values"),
            ExecError::IncompatibleTypes(a, b) => {
                write!(f, "incompatible types for comparison: {a} and {b}")
            }
        }
    }
}

impl std::error::Error for ExecError {}

/// A template that failed while rendering one field: which (`header X-User`), and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderError {
    pub what: String,
    pub error: ExecError,
}

impl ExecError {
    /// This error, as the rendering of `what` failed.
    pub fn rendering(self, what: impl Into<String>) -> RenderError {
        RenderError {
            what: what.into(),
            error: self,
        }
    }
}

impl fmt::Display for RenderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.what, self.error)
    }
}

impl std::error::Error for RenderError {}
