//! Executes a parsed template against its data, with `missingkey=zero` semantics.

use super::funcs::Func;
use super::parser::{Cmd, Node, Operand, Pipe, Term};
use super::value::Value;
use super::ExecError;
use std::borrow::Cow;

pub struct Eval<'a> {
    pub root: Value<'a>,
}

impl<'a> Eval<'a> {
    pub fn exec(&self, nodes: &[Node], dot: &Value<'a>, out: &mut String) -> Result<(), ExecError> {
        for node in nodes {
            match node {
                Node::Text(t) => out.push_str(t),
                // `{{ print X }}`, the usual identity-header template: X written straight into
                // the output, as `print` writes it (nil as nothing), with no string between.
                Node::Output(p) => match single_print(p) {
                    Some(x) => {
                        let v = self.operand(x, dot, None)?;
                        if !v.is_nil() {
                            v.write_display(out);
                        }
                    }
                    None => match self.pipe(p, dot)? {
                        // text/template prints an absent value this way; `print` avoids it.
                        Value::Nil | Value::Json(serde_json::Value::Null) => {
                            out.push_str("<no value>")
                        }
                        v => v.write_display(out),
                    },
                },
                Node::If(p, then, els) => {
                    let branch = if self.pipe(p, dot)?.truthy() {
                        then
                    } else {
                        els
                    };
                    self.exec(branch, dot, out)?;
                }
                Node::With(p, body, els) => {
                    let v = self.pipe(p, dot)?;
                    if v.truthy() {
                        self.exec(body, &v, out)?;
                    } else {
                        self.exec(els, dot, out)?;
                    }
                }
                Node::Range(p, body, els) => {
                    let v = self.pipe(p, dot)?;
                    let items = match &v {
                        Value::Json(serde_json::Value::Object(m)) => {
                            let mut keys: Vec<&String> = m.keys().collect();
                            keys.sort();
                            keys.into_iter()
                                .filter_map(|k| m.get(k))
                                .map(Value::Json)
                                .collect()
                        }
                        Value::Nil | Value::Json(serde_json::Value::Null) => Vec::new(),
                        other => other
                            .items()
                            .ok_or_else(|| ExecError::RangeOver(other.type_name()))?,
                    };
                    if items.is_empty() {
                        self.exec(els, dot, out)?;
                    }
                    for item in &items {
                        self.exec(body, item, out)?;
                    }
                }
            }
        }
        Ok(())
    }

    fn pipe(&self, pipe: &Pipe, dot: &Value<'a>) -> Result<Value<'a>, ExecError> {
        let mut value = None;
        for cmd in &pipe.0 {
            value = Some(self.cmd(cmd, dot, value)?);
        }
        Ok(value.unwrap_or(Value::Nil))
    }

    fn cmd(
        &self,
        cmd: &Cmd,
        dot: &Value<'a>,
        piped: Option<Value<'a>>,
    ) -> Result<Value<'a>, ExecError> {
        let (first, rest) = cmd.0.split_first().ok_or(ExecError::EmptyCommand)?;
        let has_args = !rest.is_empty() || piped.is_some();
        let args = |this: &Self| -> Result<Vec<Value<'a>>, ExecError> {
            let mut args = rest
                .iter()
                .map(|o| this.operand(o, dot, None))
                .collect::<Result<Vec<_>, _>>()?;
            args.extend(piped.clone());
            Ok(args)
        };
        match &first.term {
            Term::Func(f) if first.fields.is_empty() => f.call(args(self)?),
            _ if !first.fields.is_empty() && has_args => {
                self.operand(first, dot, Some(args(self)?))
            }
            _ if has_args => Err(ExecError::ArgumentToNonFunction),
            _ => self.operand(first, dot, None),
        }
    }

    /// Evaluates a term and its field chain; `args`, when given, go to the last field, which
    /// must then be a method.
    fn operand(
        &self,
        operand: &Operand,
        dot: &Value<'a>,
        args: Option<Vec<Value<'a>>>,
    ) -> Result<Value<'a>, ExecError> {
        let mut value = match &operand.term {
            Term::Dot => dot.clone(),
            Term::Root => self.root.clone(),
            Term::Str(s) => Value::Str(Cow::Owned(s.clone())),
            Term::Int(i) => Value::Int(*i),
            Term::Float(f) => Value::Float(*f),
            Term::Bool(b) => Value::Bool(*b),
            Term::Nil => Value::Nil,
            Term::Func(f) => f.call(Vec::new())?,
            Term::Paren(p) => self.pipe(p, dot)?,
        };
        let last = operand.fields.len().saturating_sub(1);
        let mut args = args;
        for (i, name) in operand.fields.iter().enumerate() {
            let call_args = if i == last { args.take() } else { None };
            value = field(value, name, call_args)?;
        }
        Ok(value)
    }
}

/// The argument of a pipeline that is `print` of a single operand.
fn single_print(pipe: &Pipe) -> Option<&Operand> {
    match pipe.0.as_slice() {
        [Cmd(ops)] => match ops.as_slice() {
            [Operand {
                term: Term::Func(Func::Print),
                fields,
            }, x]
                if fields.is_empty() =>
            {
                Some(x)
            }
            _ => None,
        },
        _ => None,
    }
}

fn field<'a>(
    recv: Value<'a>,
    name: &str,
    args: Option<Vec<Value<'a>>>,
) -> Result<Value<'a>, ExecError> {
    match recv {
        Value::Object(o) => {
            if let Some(args) = args {
                return o
                    .method(name, &args)
                    .unwrap_or_else(|| Err(ExecError::NotAMethod(name.to_string())));
            }
            o.field(name)
                .map(Ok)
                .or_else(|| o.method(name, &[]))
                .unwrap_or_else(|| {
                    Err(ExecError::NoField {
                        name: name.to_string(),
                        in_type: o.type_name(),
                    })
                })
        }
        _ if args.is_some() => Err(ExecError::NotAMethod(name.to_string())),
        Value::Json(serde_json::Value::Object(map)) => {
            Ok(map.get(name).map_or(Value::Nil, Value::Json))
        }
        // Go errors here ("nil pointer evaluating interface {}.b"), failing the request with a
        // 500 for `.Extra.a.b` when `a` is absent. Identity data is often partial (a guest has
        // none), so an absent parent reads as absent, like an absent leaf.
        Value::Nil | Value::Json(serde_json::Value::Null) => Ok(Value::Nil),
        other => Err(ExecError::NoField {
            name: name.to_string(),
            in_type: other.type_name(),
        }),
    }
}
