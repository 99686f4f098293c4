//! Compiling a configuration: parse YAML or JSON once per `on_configure`, merge handler
//! configs, build every handler, pattern and template, and produce the immutable `Filter` all
//! requests share.

use super::{Filter, Rule};
use crate::authn::Authenticator;
use crate::authz::Authorizer;
use crate::cache::jwks::{self, JwksRegistry};
use crate::config::raw::{HandlerSwitch, LogSection, RawConfig, RawHandler, RawRule};
use crate::config::{
    clusters, duration, merge, parse_document, repositories, ConfigError, Invalid, Kind,
};
use crate::errors::ErrorHandler;
use crate::mutate::Mutator;
use crate::rules::{Matcher, Pattern, Strategy};
use crate::vocab::log::{LogLevel, LogSettings};
use crate::vocab::request::CREDENTIAL_HEADERS;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// Why a `remote` authorizer is refused when Envoy does not hand the body over.
const REMOTE_NEEDS_BODY: &str = "the remote authorizer sends the request body, which portcullis \
     can read before the decision only when Envoy's wasm filter sets \
     allow_on_headers_stop_iteration: true (Envoy 1.35 or later; Istio's WasmPlugin cannot set it). \
     Set it there, then set envoy.allow_on_headers_stop_iteration: true in this configuration; \
     or use remote_json, which needs no body";

/// Where Oathkeeper's API serves the `id_token` public keys.
const DEFAULT_JWKS_ENDPOINT: &str = "/.well-known/jwks.json";

pub fn load(bytes: &[u8]) -> Result<Filter, ConfigError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| ConfigError::Syntax("the configuration is not UTF-8".to_string()))?;
    let raw: RawConfig = serde_json::from_value(parse_document(text)?)
        .map_err(|e| ConfigError::Syntax(e.to_string()))?;
    compile(raw)
}

fn compile(raw: RawConfig) -> Result<Filter, ConfigError> {
    let strategy = match raw.access_rules.matching_strategy.as_deref() {
        None | Some("") | Some("regexp") => Strategy::Regexp,
        Some("glob") => Strategy::Glob,
        Some(other) => {
            return Err(ConfigError::field(
                "access_rules.matching_strategy",
                Kind::NotOneOf {
                    value: other.to_string(),
                    accepted: "regexp or glob".into(),
                },
            ))
        }
    };
    let clusters = clusters::Clusters::from_config(&raw.clusters)
        .map_err(|e| ConfigError::field("clusters", e))?;
    let log = log_settings(&raw.log)?;

    let mut docs = raw.access_rules.rules;
    for repo in raw.access_rules.repositories.items() {
        docs.extend(repositories::load_repository(repo)?);
    }
    let ctx = Context {
        authenticators: &raw.authenticators,
        authorizers: &raw.authorizers,
        mutators: &raw.mutators,
        error_handlers: &raw.errors.handlers,
        clusters: &clusters,
        reads_bodies: raw.envoy.allow_on_headers_stop_iteration,
    };
    let jwt_global = raw.authenticators.get("jwt").map(|j| &j.config);
    let global_ms = |key: &str, default: u64| -> Result<u64, ConfigError> {
        match jwt_global.and_then(|c| c.get(key)) {
            None | Some(Value::Null) => Ok(default),
            Some(v) => v.as_str().and_then(duration::parse_ms).ok_or_else(|| {
                let value = v.as_str().map_or_else(|| v.to_string(), str::to_string);
                ConfigError::field(
                    format!("authenticators.jwt.config.{key}"),
                    Kind::NotADuration(value),
                )
            }),
        }
    };
    let mut registry = JwksRegistry {
        sources: Vec::new(),
        ttl_ms: global_ms("jwks_ttl", jwks::DEFAULT_JWKS_TTL_MS)?,
        max_wait_ms: global_ms("jwks_max_wait", jwks::DEFAULT_JWKS_MAX_WAIT_MS)?,
    };
    let mut rules = Vec::with_capacity(docs.len());
    let mut patterns = Vec::with_capacity(docs.len());
    let mut urls = Vec::with_capacity(docs.len());
    let mut ids = BTreeSet::new();
    for (i, doc) in docs.into_iter().enumerate() {
        let rule = repositories::read_rule(i, doc)?;
        if !ids.insert(rule.id.clone()) {
            return Err(ConfigError::rule(
                &rule.id,
                "id",
                Kind::Explained("another rule has the same id"),
            ));
        }
        urls.push(
            rule.matcher
                .as_ref()
                .map(|m| m.url.clone())
                .unwrap_or_default(),
        );
        let (compiled, pattern) = compile_rule(&ctx, &mut registry, strategy, i, rule)?;
        rules.push(compiled);
        patterns.push(pattern);
    }

    let fallback_names = raw
        .errors
        .fallback
        .clone()
        .unwrap_or_else(|| vec!["json".to_string()]);
    let mut fallback = Vec::with_capacity(fallback_names.len());
    for name in &fallback_names {
        let field = format!("errors.fallback ({name})");
        let config = ctx
            .switch("errors.handlers", ctx.error_handlers, name)
            .map_err(|reason| ConfigError::field(&field, reason))?;
        fallback.push(
            ErrorHandler::from_config(name, config).map_err(|e| ConfigError::field(&field, e))?,
        );
    }

    // Anti-spoofing: a client must not be able to send a header some rule sets as identity
    // through a rule that does not set it.
    let mut identity_headers: BTreeSet<String> = BTreeSet::new();
    for rule in &rules {
        for m in &rule.mutators {
            identity_headers.extend(m.header_names().into_iter().map(str::to_string));
        }
        identity_headers.extend(rule.authorizer.header_names().iter().cloned());
    }
    if let Some(Value::Object(headers)) = raw
        .mutators
        .get("header")
        .and_then(|h| h.config.get("headers"))
    {
        identity_headers.extend(headers.keys().map(|k| k.to_ascii_lowercase()));
    }
    for c in CREDENTIAL_HEADERS {
        identity_headers.remove(*c);
    }
    for rule in &mut rules {
        let own: BTreeSet<&str> = rule
            .mutators
            .iter()
            .flat_map(|m| m.header_names())
            .chain(rule.authorizer.header_names().iter().map(String::as_str))
            .collect();
        rule.strip = identity_headers
            .iter()
            .filter(|h| !own.contains(h.as_str()))
            .cloned()
            .collect();
    }

    let matcher = Matcher::new(strategy, patterns, urls.iter().map(String::as_str));
    let jwks_endpoint = Some(
        raw.jwks_endpoint
            .clone()
            .unwrap_or_else(|| DEFAULT_JWKS_ENDPOINT.to_string()),
    );
    if let Some(p) = jwks_endpoint
        .as_deref()
        .filter(|p| !p.is_empty() && !p.starts_with('/'))
    {
        return Err(ConfigError::field(
            "jwks_endpoint",
            Kind::NotAbsolutePath(p.to_string()),
        ));
    }
    let state_keys = super::state::compile(&raw.filter_state)
        .map_err(|e| ConfigError::field("filter_state", Kind::Parse(e.to_string())))?;
    let mut filter = Filter::new(
        rules,
        matcher,
        fallback,
        log,
        registry.sources,
        jwks_endpoint,
    );
    filter.state_keys = state_keys;
    filter.host_crypto = raw.envoy.host_crypto;
    Ok(filter)
}

struct Context<'a> {
    authenticators: &'a BTreeMap<String, HandlerSwitch>,
    authorizers: &'a BTreeMap<String, HandlerSwitch>,
    mutators: &'a BTreeMap<String, HandlerSwitch>,
    error_handlers: &'a BTreeMap<String, HandlerSwitch>,
    clusters: &'a clusters::Clusters,
    /// Envoy hands the request body over before the decision.
    reads_bodies: bool,
}

/// Building one rule's handlers: errors name the rule.
struct RuleContext<'a> {
    ctx: &'a Context<'a>,
    id: &'a str,
}

impl<'a> std::ops::Deref for RuleContext<'a> {
    type Target = Context<'a>;
    fn deref(&self) -> &Context<'a> {
        self.ctx
    }
}

impl RuleContext<'_> {
    /// Builds every handler of one list (`authenticators`, `mutators`, `errors`) from its
    /// merged config.
    fn list<T>(
        &self,
        field: &str,
        section: &str,
        switches: &BTreeMap<String, HandlerSwitch>,
        handlers: &[RawHandler],
        names: &[&str],
        mut build: impl FnMut(&str, Value) -> Result<T, Invalid>,
    ) -> Result<Vec<T>, ConfigError> {
        let mut built = Vec::with_capacity(handlers.len());
        for (i, h) in handlers.iter().enumerate() {
            let field = format!("{field}[{i}] ({})", h.handler);
            let config = self
                .merged(section, switches, h, names)
                .map_err(|e| ConfigError::rule(self.id, &field, e))?;
            built.push(
                build(&h.handler, config).map_err(|e| ConfigError::rule(self.id, &field, e))?,
            );
        }
        Ok(built)
    }
}

impl Context<'_> {
    /// The global config of an enabled handler; the error says why it cannot be used.
    fn switch(
        &self,
        section: &str,
        switches: &BTreeMap<String, HandlerSwitch>,
        name: &str,
    ) -> Result<Value, Invalid> {
        let default_on = section == "errors.handlers" && name == "json";
        match switches.get(name) {
            Some(s) if s.enabled.unwrap_or(default_on) => Ok(s.config.clone()),
            None if default_on => Ok(Value::Object(Default::default())),
            _ => Err(Invalid::whole(Kind::Disabled {
                section: section.to_string(),
                name: name.to_string(),
            })),
        }
    }

    fn merged(
        &self,
        section: &str,
        switches: &BTreeMap<String, HandlerSwitch>,
        handler: &RawHandler,
        names: &[&str],
    ) -> Result<Value, Invalid> {
        let name = handler.handler.as_str();
        if !names.contains(&name) {
            return Err(Invalid::whole(Kind::UnknownHandler {
                name: name.to_string(),
                known: names.join(", "),
            }));
        }
        let global = self.switch(section, switches, name)?;
        Ok(merge::deep_merge(&global, &handler.config))
    }
}

fn compile_rule(
    ctx: &Context<'_>,
    jwks: &mut JwksRegistry,
    strategy: Strategy,
    index: usize,
    raw: RawRule,
) -> Result<(Rule, Pattern), ConfigError> {
    let id = raw.id.clone();
    let ctx = RuleContext { ctx, id: &id };
    let err = |field: String, reason: Invalid| ConfigError::rule(&id, field, reason);
    let matcher = raw.matcher.ok_or_else(|| {
        err(
            "match".into(),
            Kind::Explained("Value \"match\" is empty but must be set.").into(),
        )
    })?;
    if matcher.full_method.is_some() || matcher.authority.is_some() {
        return Err(err(
            "match".into(),
            Kind::Explained(
                "gRPC rules (full_method, authority) are not supported; match the HTTP/2 path instead",
            )
            .into(),
        ));
    }
    if matcher.url.is_empty() {
        return Err(err("match.url".into(), Kind::Missing.into()));
    }
    let pattern = Pattern::compile(strategy, &matcher.url, &matcher.methods)
        .map_err(|e| err("match.url".into(), Kind::Parse(e.to_string()).into()))?;

    if raw.authenticators.is_empty() {
        return Err(err(
            "authenticators".into(),
            Kind::Explained(
                "Value of \"authenticators\" must be set and can not be an empty array.",
            )
            .into(),
        ));
    }
    let authenticators = ctx.list(
        "authenticators",
        "authenticators",
        ctx.authenticators,
        &raw.authenticators,
        &Authenticator::names().collect::<Vec<_>>(),
        |name, config| Authenticator::build(name, config, ctx.clusters, jwks),
    )?;

    let authz = raw.authorizer.ok_or_else(|| {
        err(
            "authorizer.handler".into(),
            Kind::Explained("Value of \"authorizer.handler\" can not be empty.").into(),
        )
    })?;
    let field = format!("authorizer ({})", authz.handler);
    let config = ctx
        .merged(
            "authorizers",
            ctx.authorizers,
            &authz,
            &Authorizer::names().collect::<Vec<_>>(),
        )
        .map_err(|e| err(field.clone(), e))?;
    let authorizer = Authorizer::build(&authz.handler, config, ctx.clusters)
        .map_err(|e| err(field.clone(), e))?;
    if authorizer.needs_body() && !ctx.reads_bodies {
        return Err(err(field, Kind::Explained(REMOTE_NEEDS_BODY).into()));
    }

    if raw.mutators.is_empty() {
        return Err(err(
            "mutators".into(),
            Kind::Explained("Value of \"mutators\" must be set and can not be an empty array.")
                .into(),
        ));
    }
    let mutators = ctx.list(
        "mutators",
        "mutators",
        ctx.mutators,
        &raw.mutators,
        &Mutator::names().collect::<Vec<_>>(),
        |name, config| Mutator::build(name, config, ctx.clusters, jwks),
    )?;
    let errors = ctx.list(
        "errors",
        "errors.handlers",
        ctx.error_handlers,
        &raw.errors,
        ErrorHandler::NAMES,
        ErrorHandler::from_config,
    )?;

    if let Some(up) = &raw.upstream {
        if !up.url.is_empty() && clusters::parse_url(&up.url).is_err() {
            return Err(err(
                "upstream.url".into(),
                Kind::NotAbsoluteUrl(up.url.clone()).into(),
            ));
        }
    }

    Ok((
        Rule {
            id: std::sync::Arc::from(id),
            index,
            authenticators,
            authorizer,
            mutators,
            errors,
            strip: Vec::new(),
        },
        pattern,
    ))
}

/// The `log` section, checked.
fn log_settings(log: &LogSection) -> Result<LogSettings, ConfigError> {
    let level = match log.level.as_deref().unwrap_or("info") {
        "trace" => LogLevel::Trace,
        "debug" => LogLevel::Debug,
        "info" => LogLevel::Info,
        "warn" | "warning" => LogLevel::Warn,
        "error" | "fatal" | "panic" => LogLevel::Error,
        other => {
            return Err(ConfigError::field(
                "log.level",
                Kind::NotOneOf {
                    value: other.to_string(),
                    accepted: "one of trace, debug, info, warn, error".into(),
                },
            ))
        }
    };
    Ok(LogSettings {
        level,
        leak_sensitive_values: log.leak_sensitive_values,
    })
}
