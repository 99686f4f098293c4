//! Template values: Go's dynamic values as the header mutator sees them, with Go's `%v`
//! formatting, truthiness and JSON conversion.

use std::borrow::Cow;
use std::fmt::Write;

/// A structured value exposed to templates (the session, its match context, a URL, headers).
pub trait Object {
    /// `.Name` on this object; `None` when it has no such field.
    fn field(&self, name: &str) -> Option<Value<'_>>;
    /// `.Name arg…` when `Name` is a method; `None` when it has no such method.
    fn method<'a>(
        &'a self,
        name: &str,
        args: &[Value<'a>],
    ) -> Option<Result<Value<'a>, super::ExecError>>;
    /// How `%v` prints it.
    fn display(&self, out: &mut String);
    /// Go's type name, for error messages.
    fn type_name(&self) -> &'static str;
}

#[derive(Clone)]
pub enum Value<'a> {
    /// An absent value (Go's invalid or nil interface).
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Cow<'a, str>),
    Json(&'a serde_json::Value),
    List(Vec<Value<'a>>),
    Object(&'a dyn Object),
}

impl<'a> Value<'a> {
    /// Resolves JSON scalars to plain values so callers match on one representation.
    pub fn normalized(self) -> Value<'a> {
        match self {
            Value::Json(j) => match j {
                serde_json::Value::Null => Value::Nil,
                serde_json::Value::Bool(b) => Value::Bool(*b),
                serde_json::Value::Number(n) => Value::Float(n.as_f64().unwrap_or(0.0)),
                serde_json::Value::String(s) => Value::Str(Cow::Borrowed(s)),
                _ => Value::Json(j),
            },
            v => v,
        }
    }

    pub fn is_nil(&self) -> bool {
        matches!(self, Value::Nil | Value::Json(serde_json::Value::Null))
    }

    /// Go's template truth: false, 0, nil and empty strings, lists and maps are false.
    pub fn truthy(&self) -> bool {
        match self {
            Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) => !s.is_empty(),
            Value::List(l) => !l.is_empty(),
            Value::Object(_) => true,
            Value::Json(j) => match j {
                serde_json::Value::Null => false,
                serde_json::Value::Bool(b) => *b,
                serde_json::Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
                serde_json::Value::String(s) => !s.is_empty(),
                serde_json::Value::Array(a) => !a.is_empty(),
                serde_json::Value::Object(o) => !o.is_empty(),
            },
        }
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Nil => "nil",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float64",
            Value::Str(_) => "string",
            Value::List(_) => "[]interface {}",
            Value::Object(o) => o.type_name(),
            Value::Json(j) => match j {
                serde_json::Value::Null => "nil",
                serde_json::Value::Bool(_) => "bool",
                serde_json::Value::Number(_) => "float64",
                serde_json::Value::String(_) => "string",
                serde_json::Value::Array(_) => "[]interface {}",
                serde_json::Value::Object(_) => "map[string]interface {}",
            },
        }
    }

    pub fn is_string(&self) -> bool {
        matches!(
            self,
            Value::Str(_) | Value::Json(serde_json::Value::String(_))
        )
    }

    /// Go's `fmt.Sprint` of one operand.
    pub fn write_display(&self, out: &mut String) {
        match self {
            Value::Nil => out.push_str("<nil>"),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Int(i) => {
                let _ = write!(out, "{i}");
            }
            Value::Float(f) => go_float(*f, out),
            Value::Str(s) => out.push_str(s),
            Value::List(items) => {
                out.push('[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    v.write_display(out);
                }
                out.push(']');
            }
            Value::Object(o) => o.display(out),
            Value::Json(j) => json_display(j, out),
        }
    }

    pub fn display(&self) -> String {
        let mut s = String::new();
        self.write_display(&mut s);
        s
    }

    /// The value as a string argument; numbers and booleans print as Go would.
    pub fn as_str(&self) -> Cow<'_, str> {
        match self {
            Value::Str(s) => Cow::Borrowed(s),
            Value::Json(serde_json::Value::String(s)) => Cow::Borrowed(s),
            Value::Nil => Cow::Borrowed(""),
            v => Cow::Owned(v.display()),
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            Value::Json(serde_json::Value::Number(n)) => n.as_f64(),
            Value::Str(s) => s.trim().parse().ok(),
            Value::Json(serde_json::Value::String(s)) => s.trim().parse().ok(),
            _ => None,
        }
    }

    /// Sprig's `toJson`, Go's encoding/json shape.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Nil => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Int(i) => serde_json::Value::from(*i),
            Value::Float(f) => json_number(*f),
            Value::Str(s) => serde_json::Value::String(s.to_string()),
            Value::List(l) => serde_json::Value::Array(l.iter().map(Value::to_json).collect()),
            Value::Json(j) => (*j).clone(),
            Value::Object(o) => {
                let mut s = String::new();
                o.display(&mut s);
                serde_json::Value::String(s)
            }
        }
    }

    /// The items of a list-like value, for `join`, `range` and `index`.
    pub fn items(&self) -> Option<Vec<Value<'a>>> {
        match self {
            Value::List(l) => Some(l.clone()),
            Value::Json(serde_json::Value::Array(a)) => Some(a.iter().map(Value::Json).collect()),
            _ => None,
        }
    }
}

fn json_number(f: f64) -> serde_json::Value {
    if f.fract() == 0.0 && f.abs() < 9.0e15 {
        serde_json::Value::from(f as i64)
    } else {
        serde_json::Number::from_f64(f).map_or(serde_json::Value::Null, serde_json::Value::Number)
    }
}

fn json_display(j: &serde_json::Value, out: &mut String) {
    match j {
        serde_json::Value::Null => out.push_str("<nil>"),
        serde_json::Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        serde_json::Value::Number(n) => go_float(n.as_f64().unwrap_or(0.0), out),
        serde_json::Value::String(s) => out.push_str(s),
        serde_json::Value::Array(a) => {
            out.push('[');
            for (i, v) in a.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                json_display(v, out);
            }
            out.push(']');
        }
        serde_json::Value::Object(o) => {
            out.push_str("map[");
            let mut keys: Vec<&String> = o.keys().collect();
            keys.sort();
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(k);
                out.push(':');
                if let Some(v) = o.get(k) {
                    json_display(v, out);
                }
            }
            out.push(']');
        }
    }
}

/// Go's `%v` for a float64: the shortest digits that round-trip, in `%e` form when the decimal
/// exponent is below -4 or at least 6 (`strconv.FormatFloat(f, 'g', -1, 64)`, which fmt uses), so
/// a JSON number 1234567 prints as `1.234567e+06` exactly as in Oathkeeper.
pub fn go_float(f: f64, out: &mut String) {
    if f.is_nan() {
        out.push_str("NaN");
        return;
    }
    if f.is_infinite() {
        out.push_str(if f > 0.0 { "+Inf" } else { "-Inf" });
        return;
    }
    if f == 0.0 {
        out.push_str(if f.is_sign_negative() { "-0" } else { "0" });
        return;
    }
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..6).contains(&exp) {
        out.push_str(mantissa);
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        let _ = write!(out, "{:02}", exp.abs());
    } else {
        let _ = write!(out, "{f}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(f: f64) -> String {
        let mut s = String::new();
        go_float(f, &mut s);
        s
    }

    #[test]
    fn floats_print_as_go_does() {
        assert_eq!(g(30.0), "30");
        assert_eq!(g(1.5), "1.5");
        assert_eq!(g(123456.0), "123456");
        assert_eq!(g(1234567.0), "1.234567e+06");
        assert_eq!(g(1e6), "1e+06");
        assert_eq!(g(1e21), "1e+21");
        assert_eq!(g(0.0001), "0.0001");
        assert_eq!(g(0.00001), "1e-05");
        assert_eq!(g(-2.5), "-2.5");
    }

    #[test]
    fn json_maps_print_sorted() {
        let j = serde_json::json!({"b": [1, "x"], "a": true, "c": null});
        assert_eq!(Value::Json(&j).display(), "map[a:true b:[1 x] c:<nil>]");
    }
}
