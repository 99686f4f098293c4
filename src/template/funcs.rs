//! The template functions: Go's builtins, Oathkeeper's `print`/`printIndex`, and the sprig
//! functions rules use. Resolved by name at compile time.

use super::go_int;
use super::value::Value;
use super::ExecError;
use super::TemplateError;
use base64::Engine;
use std::borrow::Cow;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    Print,
    Println,
    Printf,
    PrintIndex,
    Index,
    Len,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    And,
    Or,
    Not,
    Urlquery,
    Default,
    Empty,
    Coalesce,
    Ternary,
    Join,
    Upper,
    Lower,
    Quote,
    Squote,
    ToJson,
    ToString,
    B64enc,
    B64dec,
    Trim,
    TrimPrefix,
    TrimSuffix,
    TrimAll,
    Replace,
    Contains,
    HasPrefix,
    HasSuffix,
    SplitList,
    First,
    Last,
    List,
    Add,
    Sub,
    Mul,
    Int,
}

impl Func {
    pub fn from_name(name: &str) -> Result<Func, TemplateError> {
        Ok(match name {
            "print" => Func::Print,
            "println" => Func::Println,
            "printf" => Func::Printf,
            "printIndex" => Func::PrintIndex,
            "index" => Func::Index,
            "len" => Func::Len,
            "eq" => Func::Eq,
            "ne" => Func::Ne,
            "lt" => Func::Lt,
            "le" => Func::Le,
            "gt" => Func::Gt,
            "ge" => Func::Ge,
            "and" => Func::And,
            "or" => Func::Or,
            "not" => Func::Not,
            "urlquery" => Func::Urlquery,
            "default" => Func::Default,
            "empty" => Func::Empty,
            "coalesce" => Func::Coalesce,
            "ternary" => Func::Ternary,
            "join" => Func::Join,
            "upper" => Func::Upper,
            "lower" => Func::Lower,
            "quote" => Func::Quote,
            "squote" => Func::Squote,
            "toJson" => Func::ToJson,
            "toString" => Func::ToString,
            "b64enc" => Func::B64enc,
            "b64dec" => Func::B64dec,
            "trim" => Func::Trim,
            "trimPrefix" => Func::TrimPrefix,
            "trimSuffix" => Func::TrimSuffix,
            "trimAll" => Func::TrimAll,
            "replace" => Func::Replace,
            "contains" => Func::Contains,
            "hasPrefix" => Func::HasPrefix,
            "hasSuffix" => Func::HasSuffix,
            "splitList" => Func::SplitList,
            "first" => Func::First,
            "last" => Func::Last,
            "list" => Func::List,
            "add" => Func::Add,
            "sub" => Func::Sub,
            "mul" => Func::Mul,
            "int" | "int64" => Func::Int,
            _ => return Err(TemplateError::UnknownFunction(name.to_string())),
        })
    }

    fn arity(self) -> (usize, usize) {
        match self {
            Func::Print | Func::Println | Func::List | Func::Coalesce => (0, usize::MAX),
            Func::Printf | Func::And | Func::Or => (1, usize::MAX),
            Func::Index | Func::Eq => (2, usize::MAX),
            Func::Add | Func::Mul => (1, usize::MAX),
            Func::Ternary | Func::Replace => (3, 3),
            Func::PrintIndex
            | Func::Ne
            | Func::Lt
            | Func::Le
            | Func::Gt
            | Func::Ge
            | Func::Default
            | Func::Join
            | Func::TrimPrefix
            | Func::TrimSuffix
            | Func::TrimAll
            | Func::Contains
            | Func::HasPrefix
            | Func::HasSuffix
            | Func::SplitList
            | Func::Sub => (2, 2),
            _ => (1, 1),
        }
    }

    pub fn call<'a>(self, mut args: Vec<Value<'a>>) -> Result<Value<'a>, ExecError> {
        let (min, max) = self.arity();
        if args.len() < min || args.len() > max {
            return Err(ExecError::WrongArgCount {
                func: format!("{self:?}"),
                got: args.len(),
            });
        }
        let s = |v: &Value<'a>| v.as_str().into_owned();
        let arg = |i: usize| args.get(i).cloned().unwrap_or(Value::Nil);
        Ok(match self {
            Func::Print => Value::Str(Cow::Owned(sprint(&args, false))),
            Func::Println => Value::Str(Cow::Owned(sprint(&args, true))),
            Func::Printf => Value::Str(Cow::Owned(printf(&args)?)),
            Func::PrintIndex => {
                let i = arg(1).as_f64().unwrap_or(-1.0);
                let item = arg(0)
                    .items()
                    .and_then(|items| (i >= 0.0).then(|| items.get(i as usize).cloned()).flatten());
                Value::Str(Cow::Owned(
                    item.map(|v| v.as_str().into_owned()).unwrap_or_default(),
                ))
            }
            Func::Index => {
                let mut cur = arg(0);
                for key in args.iter().skip(1) {
                    cur = index(&cur, key)?;
                }
                cur
            }
            Func::Len => Value::Int(length(&arg(0))? as i64),
            Func::Eq => {
                let first = arg(0);
                Value::Bool(args.iter().skip(1).any(|b| equal(&first, b)))
            }
            Func::Ne => Value::Bool(!equal(&arg(0), &arg(1))),
            Func::Lt | Func::Le | Func::Gt | Func::Ge => {
                let ord = compare(&arg(0), &arg(1))?;
                Value::Bool(match self {
                    Func::Lt => ord.is_lt(),
                    Func::Le => ord.is_le(),
                    Func::Gt => ord.is_gt(),
                    _ => ord.is_ge(),
                })
            }
            Func::And => {
                let pick = args
                    .iter()
                    .position(|v| !v.truthy())
                    .unwrap_or(args.len() - 1);
                args.swap_remove(pick)
            }
            Func::Or => {
                let pick = args
                    .iter()
                    .position(Value::truthy)
                    .unwrap_or(args.len() - 1);
                args.swap_remove(pick)
            }
            Func::Not => Value::Bool(!arg(0).truthy()),
            Func::Urlquery => Value::Str(Cow::Owned(crate::vocab::percent::query_escape(&sprint(
                &args, false,
            )))),
            Func::Default => {
                if arg(1).truthy() {
                    arg(1)
                } else {
                    arg(0)
                }
            }
            Func::Empty => Value::Bool(!arg(0).truthy()),
            Func::Coalesce => args.into_iter().find(Value::truthy).unwrap_or(Value::Nil),
            Func::Ternary => {
                if arg(2).truthy() {
                    arg(0)
                } else {
                    arg(1)
                }
            }
            Func::Join => {
                let sep = s(&arg(0));
                let list = arg(1);
                let items = list.items().unwrap_or_else(|| vec![list.clone()]);
                let parts: Vec<String> = items.iter().map(|v| v.as_str().into_owned()).collect();
                Value::Str(Cow::Owned(parts.join(&sep)))
            }
            Func::Upper => Value::Str(Cow::Owned(s(&arg(0)).to_uppercase())),
            Func::Lower => Value::Str(Cow::Owned(s(&arg(0)).to_lowercase())),
            Func::Quote => Value::Str(Cow::Owned(
                args.iter()
                    .filter(|v| !v.is_nil())
                    .map(|v| serde_json::Value::String(s(v)).to_string())
                    .collect::<Vec<_>>()
                    .join(" "),
            )),
            Func::Squote => Value::Str(Cow::Owned(format!("'{}'", s(&arg(0))))),
            Func::ToJson => Value::Str(Cow::Owned(arg(0).to_json().to_string())),
            Func::ToString => Value::Str(Cow::Owned(s(&arg(0)))),
            Func::B64enc => Value::Str(Cow::Owned(
                base64::engine::general_purpose::STANDARD.encode(s(&arg(0))),
            )),
            Func::B64dec => Value::Str(Cow::Owned(
                base64::engine::general_purpose::STANDARD
                    .decode(s(&arg(0)))
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .unwrap_or_default(),
            )),
            Func::Trim => Value::Str(Cow::Owned(s(&arg(0)).trim().to_string())),
            Func::TrimPrefix => {
                let (p, v) = (s(&arg(0)), s(&arg(1)));
                Value::Str(Cow::Owned(
                    v.strip_prefix(p.as_str()).unwrap_or(&v).to_string(),
                ))
            }
            Func::TrimSuffix => {
                let (p, v) = (s(&arg(0)), s(&arg(1)));
                Value::Str(Cow::Owned(
                    v.strip_suffix(p.as_str()).unwrap_or(&v).to_string(),
                ))
            }
            Func::TrimAll => {
                let (cut, v) = (s(&arg(0)), s(&arg(1)));
                Value::Str(Cow::Owned(v.trim_matches(|c| cut.contains(c)).to_string()))
            }
            Func::Replace => Value::Str(Cow::Owned(s(&arg(2)).replace(&s(&arg(0)), &s(&arg(1))))),
            Func::Contains => Value::Bool(s(&arg(1)).contains(&s(&arg(0)))),
            Func::HasPrefix => Value::Bool(s(&arg(1)).starts_with(&s(&arg(0)))),
            Func::HasSuffix => Value::Bool(s(&arg(1)).ends_with(&s(&arg(0)))),
            Func::SplitList => {
                let (sep, v) = (s(&arg(0)), s(&arg(1)));
                Value::List(
                    v.split(&sep)
                        .map(|p| Value::Str(Cow::Owned(p.to_string())))
                        .collect(),
                )
            }
            Func::First => arg(0)
                .items()
                .and_then(|i| i.into_iter().next())
                .unwrap_or(Value::Nil),
            Func::Last => arg(0)
                .items()
                .and_then(|i| i.into_iter().last())
                .unwrap_or(Value::Nil),
            Func::List => Value::List(args),
            // Go's int64 arithmetic wraps; so does sprig's, and so does ours (never a trap).
            Func::Add => Value::Int(args.iter().map(to_int).fold(0, i64::wrapping_add)),
            Func::Mul => Value::Int(args.iter().map(to_int).fold(1, i64::wrapping_mul)),
            Func::Sub => Value::Int(to_int(&arg(0)).wrapping_sub(to_int(&arg(1)))),
            Func::Int => Value::Int(to_int(&arg(0))),
        })
    }
}

/// Sprig's `toInt64`. Integers stay exact (an int64 past 2^53 would not survive a float), other
/// numbers truncate as Go's `int64(f)`, strings read as cast reads them, and whatever cast cannot
/// convert is 0.
fn to_int(v: &Value<'_>) -> i64 {
    match v {
        Value::Int(i) => *i,
        Value::Bool(b) | Value::Json(serde_json::Value::Bool(b)) => i64::from(*b),
        Value::Str(s) => go_int::parse(s).unwrap_or(0),
        Value::Json(serde_json::Value::String(s)) => go_int::parse(s).unwrap_or(0),
        _ => v.as_f64().map_or(0, |f| f as i64),
    }
}

/// Oathkeeper's `print`: nil prints as nothing, everything else as `%v`, with Go's rule of a
/// space between operands when neither is a string.
fn sprint(args: &[Value<'_>], line: bool) -> String {
    let mut out = String::new();
    let mut prev_string = true;
    for (i, v) in args.iter().enumerate() {
        let is_string = v.is_string();
        if i > 0 && (line || (!is_string && !prev_string)) {
            out.push(' ');
        }
        if !v.is_nil() {
            v.write_display(&mut out);
        }
        prev_string = is_string;
    }
    if line {
        out.push('\n');
    }
    out
}

fn printf(args: &[Value<'_>]) -> Result<String, ExecError> {
    let format = args
        .first()
        .map(|f| f.as_str().into_owned())
        .unwrap_or_default();
    let mut rest = args.iter().skip(1);
    let mut out = String::new();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('%') => out.push('%'),
            Some('s') | Some('v') | Some('d') => match rest.next() {
                Some(v) => v.write_display(&mut out),
                None => out.push_str("%!(MISSING)"),
            },
            Some('q') => out.push_str(
                &serde_json::Value::String(
                    rest.next()
                        .map(|v| v.as_str().into_owned())
                        .unwrap_or_default(),
                )
                .to_string(),
            ),
            _ => return Err(ExecError::PrintfVerb),
        }
    }
    Ok(out)
}

fn index<'a>(container: &Value<'a>, key: &Value<'a>) -> Result<Value<'a>, ExecError> {
    match container {
        Value::Json(serde_json::Value::Object(map)) => Ok(map
            .get(key.as_str().as_ref())
            .map_or(Value::Nil, Value::Json)),
        Value::Object(o) => Ok(o.field(&key.as_str()).unwrap_or(Value::Nil)),
        Value::Nil => Err(ExecError::IndexOfNil),
        other => {
            let items = other
                .items()
                .ok_or_else(|| ExecError::IndexType(other.type_name()))?;
            let i = key.as_f64().ok_or(ExecError::IndexNotInteger)?;
            items
                .get(i as usize)
                .cloned()
                .filter(|_| i >= 0.0)
                .ok_or_else(|| ExecError::IndexOutOfRange(i.to_string()))
        }
    }
}

fn length(v: &Value<'_>) -> Result<usize, ExecError> {
    match v {
        Value::Str(s) => Ok(s.len()),
        Value::Json(serde_json::Value::String(s)) => Ok(s.len()),
        Value::Json(serde_json::Value::Object(o)) => Ok(o.len()),
        other => other
            .items()
            .map(|i| i.len())
            .ok_or_else(|| ExecError::LenOfType(other.type_name())),
    }
}

fn equal(a: &Value<'_>, b: &Value<'_>) -> bool {
    match (a.clone().normalized(), b.clone().normalized()) {
        (Value::Nil, Value::Nil) => true,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (x, y) if x.is_string() && y.is_string() => x.as_str() == y.as_str(),
        (x, y) => match (x.as_f64(), y.as_f64()) {
            (Some(p), Some(q)) if !x.is_string() && !y.is_string() => p == q,
            _ => false,
        },
    }
}

fn compare(a: &Value<'_>, b: &Value<'_>) -> Result<std::cmp::Ordering, ExecError> {
    if a.is_string() && b.is_string() {
        return Ok(a.as_str().cmp(&b.as_str()));
    }
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) if !a.is_string() && !b.is_string() => {
            x.partial_cmp(&y).ok_or(ExecError::Incomparable)
        }
        _ => Err(ExecError::IncompatibleTypes(a.type_name(), b.type_name())),
    }
}
