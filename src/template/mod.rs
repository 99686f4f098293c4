//! Go `text/template` as Oathkeeper rules use it: compiled once at configure time, rendered per
//! request against the authentication session without re-parsing.

mod context;
mod eval;
mod exec_error;
pub mod funcs;
mod go_int;
mod lexer;
mod parser;
pub mod value;

pub use exec_error::{ExecError, RenderError};
pub use value::{Object, Value};

/// Why a template does not compile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateError {
    Syntax(&'static str),
    UnknownFunction(String),
    Unsupported(String),
}

impl std::fmt::Display for TemplateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TemplateError::Syntax(what) => write!(f, "template syntax error: {what}"),
            TemplateError::UnknownFunction(name) => write!(f, "function {name:?} not defined"),
            TemplateError::Unsupported(what) => write!(f, "{what} are not supported in templates"),
        }
    }
}

impl std::error::Error for TemplateError {}

#[derive(Debug, Clone)]
pub struct Template {
    nodes: Vec<parser::Node>,
}

impl Template {
    pub fn compile(src: &str) -> Result<Template, TemplateError> {
        Ok(Template {
            nodes: parser::parse(lexer::split(src)?)?,
        })
    }

    /// Renders against `data`; an error is the reason the handler fails (a 500, as in
    /// Oathkeeper).
    pub fn render(&self, data: &dyn Object) -> Result<String, ExecError> {
        let root = Value::Object(data);
        let eval = eval::Eval { root: root.clone() };
        let mut out = String::new();
        eval.exec(&self.nodes, &root, &mut out)?;
        Ok(out)
    }
}
