//! The claim checks of Oathkeeper's jwt verifier: time (`exp`, `nbf`, `iat`), audience, issuer
//! and scope, plus its scope normalisation. They are cheap, so they run before the signature
//! and again on every cache hit.

use super::scope::Strategy;
use serde_json::{Map, Value};
use std::fmt;

/// What a rule requires of a token's claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    pub allowed_algorithms: Vec<String>,
    pub trusted_issuers: Vec<String>,
    pub target_audience: Vec<String>,
    pub required_scope: Vec<String>,
    pub scope_strategy: Strategy,
    /// Clock skew tolerated on `nbf` and `iat`; `exp` is strict.
    pub skew_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimError {
    AlgorithmNotAllowed(String),
    /// A time claim that is not a number.
    NotANumber(&'static str),
    Expired,
    NotYetValid,
    IssuedInTheFuture,
    AudienceMissing(String),
    UntrustedIssuer,
    ScopeMissing(String),
    /// `required_scope` with `scope_strategy: none`, which Oathkeeper refuses per request.
    ScopeStrategyNone,
}

impl fmt::Display for ClaimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClaimError::AlgorithmNotAllowed(a) => {
                write!(
                    f,
                    "JSON Web Token used signing method {a:?} which is not allowed"
                )
            }
            ClaimError::NotANumber(c) => write!(f, "the claim {c} is not a number"),
            ClaimError::Expired => f.write_str("token is expired"),
            ClaimError::NotYetValid => f.write_str("token is not valid yet"),
            ClaimError::IssuedInTheFuture => f.write_str("token used before issued"),
            ClaimError::AudienceMissing(a) => {
                write!(f, "Token audience is not intended for target audience {a}")
            }
            ClaimError::UntrustedIssuer => {
                f.write_str("Token issuer does not match any trusted issuer")
            }
            ClaimError::ScopeMissing(s) => {
                write!(f, "JSON Web Token is missing required scope {s:?}")
            }
            ClaimError::ScopeStrategyNone => {
                f.write_str("Scope validation was requested but scope strategy is set to \"none\".")
            }
        }
    }
}

impl std::error::Error for ClaimError {}

impl Rules {
    pub fn algorithm_allowed(&self, alg: &str) -> Result<(), ClaimError> {
        if self.allowed_algorithms.iter().any(|a| a == alg) {
            Ok(())
        } else {
            Err(ClaimError::AlgorithmNotAllowed(alg.to_string()))
        }
    }

    /// Every claim check, at `now_ms`. `claims` may be raw or normalised.
    pub fn check(&self, claims: &Map<String, Value>, now_ms: u64) -> Result<(), ClaimError> {
        let now = now_ms as f64;
        let skew = self.skew_ms as f64;
        if let Some(exp) = time(claims, "exp")? {
            if now >= exp * 1000.0 {
                return Err(ClaimError::Expired);
            }
        }
        if let Some(nbf) = time(claims, "nbf")? {
            if now < nbf * 1000.0 - skew {
                return Err(ClaimError::NotYetValid);
            }
        }
        if let Some(iat) = time(claims, "iat")? {
            if now < iat * 1000.0 - skew {
                return Err(ClaimError::IssuedInTheFuture);
            }
        }
        if !self.target_audience.is_empty() {
            let aud = strings(claims.get("aud"));
            if let Some(missing) = self
                .target_audience
                .iter()
                .find(|a| !aud.contains(&a.as_str()))
            {
                return Err(ClaimError::AudienceMissing(missing.clone()));
            }
        }
        if !self.trusted_issuers.is_empty() {
            let iss = claims.get("iss").and_then(Value::as_str);
            if !iss.is_some_and(|i| self.trusted_issuers.iter().any(|t| t == i)) {
                return Err(ClaimError::UntrustedIssuer);
            }
        }
        if !self.required_scope.is_empty() {
            if self.scope_strategy == Strategy::None {
                return Err(ClaimError::ScopeStrategyNone);
            }
            let granted = scopes(claims);
            if let Some(missing) = self
                .required_scope
                .iter()
                .find(|s| !self.scope_strategy.grants(&granted, s))
            {
                return Err(ClaimError::ScopeMissing(missing.clone()));
            }
        }
        Ok(())
    }
}

fn time(claims: &Map<String, Value>, name: &'static str) -> Result<Option<f64>, ClaimError> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_f64().map(Some).ok_or(ClaimError::NotANumber(name)),
    }
}

/// A string, or the strings of an array.
fn strings(v: Option<&Value>) -> Vec<&str> {
    match v {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// The first of `scp`, `scope`, `scopes`, as Oathkeeper reads it: a string splits on spaces.
fn scope_claim(claims: &Map<String, Value>) -> Option<(&'static str, &Value)> {
    ["scp", "scope", "scopes"]
        .into_iter()
        .find_map(|k| claims.get(k).map(|v| (k, v)))
}

fn scopes(claims: &Map<String, Value>) -> Vec<&str> {
    match scope_claim(claims) {
        Some((_, Value::String(s))) => s.split(' ').filter(|p| !p.is_empty()).collect(),
        Some((_, v)) => strings(Some(v)),
        None => Vec::new(),
    }
}

/// Oathkeeper's normalisation: the scope claim moves to `scp` as an array, `[]` when absent.
pub fn normalize_scope(claims: &mut Map<String, Value>) {
    let list: Vec<Value> = scopes(claims)
        .into_iter()
        .map(|s| Value::String(s.to_string()))
        .collect();
    if let Some((key, _)) = scope_claim(claims) {
        claims.remove(key);
    }
    claims.insert("scp".to_string(), Value::Array(list));
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rules() -> Rules {
        Rules {
            allowed_algorithms: vec!["RS256".into()],
            trusted_issuers: vec![],
            target_audience: vec![],
            required_scope: vec![],
            scope_strategy: Strategy::None,
            skew_ms: 0,
        }
    }

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn time_claims_with_and_without_skew() {
        let r = rules();
        let now = 1_000_000;
        assert_eq!(
            r.check(&obj(json!({"exp": 1000})), now * 1000),
            Err(ClaimError::Expired)
        );
        assert_eq!(
            r.check(&obj(json!({"exp": 1_000_000})), now * 1000 - 1),
            Ok(())
        );
        assert_eq!(r.check(&obj(json!({"exp": 1_000_001})), now * 1000), Ok(()));
        assert_eq!(
            r.check(&obj(json!({"nbf": 1_000_001})), now * 1000),
            Err(ClaimError::NotYetValid)
        );
        assert_eq!(
            r.check(&obj(json!({"iat": 1_000_001})), now * 1000),
            Err(ClaimError::IssuedInTheFuture)
        );
        assert_eq!(
            r.check(&obj(json!({"exp": "soon"})), 0),
            Err(ClaimError::NotANumber("exp"))
        );
        assert_eq!(
            r.check(&obj(json!({})), now * 1000),
            Ok(()),
            "exp is not required"
        );
        let skewed = Rules {
            skew_ms: 5000,
            ..rules()
        };
        let ahead = obj(json!({"nbf": 1_000_005, "iat": 1_000_005}));
        assert_eq!(skewed.check(&ahead, now * 1000), Ok(()));
        assert_eq!(
            skewed.check(&ahead, now * 1000 - 1),
            Err(ClaimError::NotYetValid)
        );
        assert_eq!(
            skewed.check(&obj(json!({"exp": 1_000_000})), now * 1000),
            Err(ClaimError::Expired),
            "no skew on exp"
        );
    }

    #[test]
    fn audience_issuer_scope() {
        let r = Rules {
            target_audience: vec!["a".into(), "b".into()],
            trusted_issuers: vec!["https://issuer".into()],
            required_scope: vec!["read".into()],
            scope_strategy: Strategy::Exact,
            ..rules()
        };
        let ok = json!({"aud": ["a", "b", "c"], "iss": "https://issuer", "scope": "write read"});
        assert_eq!(r.check(&obj(ok.clone()), 0), Ok(()));
        let mut one = ok.clone();
        one["aud"] = json!("a");
        assert_eq!(
            r.check(&obj(one), 0),
            Err(ClaimError::AudienceMissing("b".into()))
        );
        let mut iss = ok.clone();
        iss["iss"] = json!("https://issuer/");
        assert_eq!(r.check(&obj(iss), 0), Err(ClaimError::UntrustedIssuer));
        let mut scope = ok.clone();
        scope["scope"] = json!(["write"]);
        assert_eq!(
            r.check(&obj(scope), 0),
            Err(ClaimError::ScopeMissing("read".into()))
        );
        let none = Rules {
            scope_strategy: Strategy::None,
            ..r
        };
        assert_eq!(none.check(&obj(ok), 0), Err(ClaimError::ScopeStrategyNone));
    }

    #[test]
    fn scope_normalisation() {
        let mut c = obj(json!({"scope": "a b", "scopes": ["x"]}));
        normalize_scope(&mut c);
        assert_eq!(
            Value::Object(c),
            json!({"scp": ["a", "b"], "scopes": ["x"]})
        );
        let mut c = obj(json!({"scp": ["a"], "scope": "b"}));
        normalize_scope(&mut c);
        assert_eq!(Value::Object(c), json!({"scp": ["a"], "scope": "b"}));
        let mut c = obj(json!({"sub": "x"}));
        normalize_scope(&mut c);
        assert_eq!(Value::Object(c), json!({"sub": "x", "scp": []}));
    }
}
