//! The session types as template objects, with Oathkeeper's (Go's) field and method names:
//! `.Subject`, `.Extra`, `.Header.Get`, `.MatchContext.URL.Query.Get`, ….

use super::{ExecError, Object, Value};
use crate::vocab::percent::encode_path;
use crate::vocab::request::Headers;
use crate::vocab::session::{MatchContext, Query, Session, Url};
use std::borrow::Cow;

impl Object for Query<'_> {
    fn field(&self, _: &str) -> Option<Value<'_>> {
        None
    }
    fn method<'a>(
        &'a self,
        name: &str,
        args: &[Value<'a>],
    ) -> Option<Result<Value<'a>, ExecError>> {
        match (name, args) {
            ("Get", [key]) => Some(Ok(Value::Str(Cow::Owned(
                self.get(&key.as_str()).unwrap_or_default(),
            )))),
            ("Encode", []) => Some(Ok(Value::Str(Cow::Borrowed(self.0)))),
            _ => None,
        }
    }
    fn display(&self, out: &mut String) {
        out.push_str(self.0);
    }
    fn type_name(&self) -> &'static str {
        "url.Values"
    }
}

impl Object for Session<'_> {
    fn field(&self, name: &str) -> Option<Value<'_>> {
        Some(match name {
            "Subject" => Value::Str(Cow::Borrowed(&self.subject)),
            "Extra" => Value::Json(&self.extra),
            "Header" => Value::Object(&self.header),
            "MatchContext" => Value::Object(&self.match_context),
            _ => return None,
        })
    }
    fn method<'a>(&'a self, _: &str, _: &[Value<'a>]) -> Option<Result<Value<'a>, ExecError>> {
        None
    }
    fn display(&self, out: &mut String) {
        out.push_str("&{");
        out.push_str(&self.subject);
        out.push('}');
    }
    fn type_name(&self) -> &'static str {
        "*authn.AuthenticationSession"
    }
}

impl Object for MatchContext<'_> {
    fn field(&self, name: &str) -> Option<Value<'_>> {
        Some(match name {
            "RegexpCaptureGroups" => Value::List(
                self.captures
                    .iter()
                    .map(|c| Value::Str(Cow::Borrowed(c.as_str())))
                    .collect(),
            ),
            "URL" => Value::Object(&self.url),
            "Method" => Value::Str(Cow::Borrowed(self.method)),
            "Header" => Value::Object(self.header),
            _ => return None,
        })
    }
    fn method<'a>(&'a self, _: &str, _: &[Value<'a>]) -> Option<Result<Value<'a>, ExecError>> {
        None
    }
    fn display(&self, out: &mut String) {
        out.push_str("{...}");
    }
    fn type_name(&self) -> &'static str {
        "authn.MatchContext"
    }
}

impl Object for Url<'_> {
    fn field(&self, name: &str) -> Option<Value<'_>> {
        let s = match name {
            "Scheme" => self.scheme,
            "Host" => self.host,
            "Path" => self.path,
            "RawQuery" => self.query.0,
            "Fragment" | "RawPath" | "Opaque" => "",
            _ => return None,
        };
        Some(Value::Str(Cow::Borrowed(s)))
    }
    fn method<'a>(
        &'a self,
        name: &str,
        args: &[Value<'a>],
    ) -> Option<Result<Value<'a>, ExecError>> {
        if !args.is_empty() {
            return Some(Err(ExecError::Arguments {
                name: name.to_string(),
                want: "no arguments",
            }));
        }
        Some(Ok(match name {
            "Hostname" => Value::Str(Cow::Borrowed(self.hostname())),
            "Port" => Value::Str(Cow::Borrowed(
                self.host
                    .rsplit_once(':')
                    .map(|(_, p)| p)
                    .filter(|p| p.bytes().all(|b| b.is_ascii_digit()))
                    .unwrap_or(""),
            )),
            "String" => Value::Str(Cow::Owned(self.display_string())),
            "EscapedPath" => Value::Str(encode_path(self.path)),
            "Query" => Value::Object(&self.query),
            _ => return None,
        }))
    }
    fn display(&self, out: &mut String) {
        self.write(out);
    }
    fn type_name(&self) -> &'static str {
        "*url.URL"
    }
}

impl Url<'_> {
    fn display_string(&self) -> String {
        let mut s = String::new();
        self.write(&mut s);
        s
    }
}

/// `http.Header`: `.Get "Name"` returns the first value or "", names are case-insensitive.
impl Object for Headers {
    fn field(&self, name: &str) -> Option<Value<'_>> {
        let values: Vec<Value<'_>> = self
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| Value::Str(Cow::Borrowed(v)))
            .collect();
        Some(if values.is_empty() {
            Value::Nil
        } else {
            Value::List(values)
        })
    }
    fn method<'a>(
        &'a self,
        name: &str,
        args: &[Value<'a>],
    ) -> Option<Result<Value<'a>, ExecError>> {
        match (name, args) {
            ("Get", [key]) => Some(Ok(Value::Str(Cow::Borrowed(
                self.get(&key.as_str()).unwrap_or(""),
            )))),
            ("Values", [key]) => self.field(&key.as_str()).map(Ok),
            ("Get" | "Values", _) => Some(Err(ExecError::Arguments {
                name: name.to_string(),
                want: "one argument",
            })),
            _ => None,
        }
    }
    fn display(&self, out: &mut String) {
        out.push_str("map[");
        for (i, (k, v)) in self.iter().enumerate() {
            if i > 0 {
                out.push(' ');
            }
            out.push_str(k);
            out.push_str(":[");
            out.push_str(v);
            out.push(']');
        }
        out.push(']');
    }
    fn type_name(&self) -> &'static str {
        "http.Header"
    }
}
