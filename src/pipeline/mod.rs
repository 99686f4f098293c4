//! The per-request pipeline as a state machine: match one rule, run its authenticators (which
//! may pause on callouts), authorizer and mutators, and answer with effects. Time and callout
//! results are inputs; nothing here talks to a proxy.

pub mod decision;

use crate::authn::{self, Authenticator, AuthnStep, Ctx, Input, Pending};
use crate::authz::AuthzStep;
use crate::cache::digest::Digest;
use crate::cache::jwks::JwksStore;
use crate::cache::SharedData;
use crate::errors::{self, ErrorHandler};
use crate::filter::{Filter, Rule};
use crate::mutate::hydrator::Hydrator;
use crate::mutate::id_token::Keys;
use crate::mutate::{self, Mutator};
use crate::rules::{path, Found};
use crate::vocab::callout::{Callout, CalloutResult};
use crate::vocab::effect::{self, Effect, Reply};
use crate::vocab::percent::encode_path;
use crate::vocab::rejection::PipelineError;
use crate::vocab::request::{Headers, Request};
use crate::vocab::session::{MatchContext, Query, Session, Url};
use crate::vocab::stats::Stats;
use decision::Decision;
use std::cell::RefCell;
use std::rc::Rc;

/// The incoming request's trace context, carried onto every callout it causes so that the
/// session store's span joins the request's trace. Not part of any cache key.
const TRACE_HEADERS: &[&str] = &[
    "traceparent",
    "tracestate",
    "b3",
    "x-b3-traceid",
    "x-b3-spanid",
    "x-b3-parentspanid",
    "x-b3-sampled",
    "x-b3-flags",
    "uber-trace-id",
    "x-request-id",
];

/// The parts of the authentication session that outlive a callout.
struct Identity {
    subject: String,
    extra: Rc<serde_json::Value>,
    header: Headers,
}

/// The callout with the request's trace context added.
fn with_trace_context(mut callout: Callout, request: &Request) -> Callout {
    for name in TRACE_HEADERS {
        let present = callout.headers.iter().any(|(k, _)| k == name);
        if let (false, Some(v)) = (present, request.headers.get(name)) {
            callout.headers.push((name.to_string(), v.to_string()));
        }
    }
    callout
}

/// The authentication session templates see: the identity moved in, the request borrowed.
fn session(matched: &Matched, id: Identity) -> Session<'_> {
    Session {
        subject: id.subject,
        extra: id.extra,
        header: id.header,
        match_context: MatchContext {
            captures: &matched.captures,
            url: matched.url(),
            method: &matched.request.method,
            header: &matched.request.headers,
        },
    }
}

/// The identity moved back out of a session.
fn identity(session: Session<'_>) -> Identity {
    Identity {
        subject: session.subject,
        extra: session.extra,
        header: session.header,
    }
}

/// What one VM (one Envoy worker) remembers between requests; reset with each configuration.
/// Each handler family owns its part.
pub struct VmState {
    pub authn: authn::Caches,
    pub mutate: mutate::Caches,
    /// Keys fetched for `jwt` authenticators and `id_token` mutators.
    pub jwks: JwksStore,
    pub stats: Stats,
}

impl VmState {
    /// Empty caches sized for `filter`.
    pub fn new(filter: &Filter) -> VmState {
        let entries = filter
            .rules
            .iter()
            .flat_map(|r| r.authenticators.iter())
            .map(Authenticator::session_cache_entries)
            .max()
            .unwrap_or(0);
        VmState {
            authn: authn::Caches::new(entries),
            mutate: mutate::Caches::default(),
            jwks: JwksStore::new(filter.jwks_sources.len()),
            stats: Stats::default(),
        }
    }
}

/// The public keys of every `id_token` signer, as a JWKS document.
fn public_keys(filter: &Filter, vm: &mut VmState) -> String {
    let mut keys: Vec<serde_json::Value> = Vec::new();
    for m in filter.rules.iter().flat_map(|r| r.mutators.iter()) {
        let Mutator::IdToken(t) = m else { continue };
        let signer = match &t.keys {
            Keys::Inline(s) => Some(Rc::clone(s)),
            Keys::Fetched(_) => t.signer(&mut vm.mutate, &vm.jwks).ok(),
        };
        if let Some(public) = signer.and_then(|s| s.public.clone()) {
            if !keys.contains(&public) {
                keys.push(public);
            }
        }
    }
    serde_json::json!({ "keys": keys }).to_string()
}

/// Where a request stands.
enum State {
    Start,
    /// Waiting for callout `call` made by authenticator `authn`.
    Calling {
        matched: Box<Matched>,
        authn: usize,
        call: u32,
        pending: Pending,
    },
    /// Parked behind another request's identical callout.
    Waiting {
        matched: Box<Matched>,
        authn: usize,
    },
    /// Waiting for the callout `call` of the hydrator at mutator index `next`.
    Mutating {
        matched: Box<Matched>,
        identity: Box<Identity>,
        next: usize,
        call: u32,
        key: Digest,
    },
    /// Authenticated; the authorizer needs the request body, which is still arriving.
    AwaitingBody {
        matched: Box<Matched>,
        identity: Box<Identity>,
    },
    /// Waiting for the authorizer's callout `call`.
    Authorizing {
        matched: Box<Matched>,
        identity: Box<Identity>,
        call: u32,
    },
    Finished,
}

/// A request that matched a rule, kept across callouts.
struct Matched {
    request: Request,
    rule: Rc<Rule>,
    captures: Vec<String>,
    path: String,
    query: String,
    rewrite: Option<String>,
}

impl Matched {
    fn url(&self) -> Url<'_> {
        Url {
            scheme: &self.request.scheme,
            host: &self.request.authority,
            path: &self.path,
            query: Query(&self.query),
        }
    }
}

/// The request body, as far as the pipeline knows it.
enum Body {
    /// The headers ended the stream, or nobody needs the body.
    Empty,
    /// More is coming; the proxy holds it back until the end of the stream.
    Streaming,
    Complete(Vec<u8>),
}

/// One request's pass through the pipeline.
pub struct Exchange {
    filter: Rc<Filter>,
    vm: Rc<RefCell<VmState>>,
    /// This request's id among the VM's requests (the proxy's context id).
    id: u32,
    state: State,
    next_call: u32,
    decision: Option<Decision>,
    body: Body,
    /// The matched rule's authorizer reads the body.
    wants_body: bool,
    /// The connection's peer address, when error handlers need it.
    peer: Option<String>,
    started_ms: u64,
    /// The time of the step being taken.
    now_ms: u64,
}

/// The environment of one step: the time and the proxy's shared data.
pub struct Env<'a> {
    pub now_ms: u64,
    pub shared: &'a dyn SharedData,
}

impl Exchange {
    pub fn new(filter: Rc<Filter>, vm: Rc<RefCell<VmState>>, id: u32) -> Exchange {
        Exchange {
            filter,
            vm,
            id,
            state: State::Start,
            next_call: 0,
            decision: None,
            body: Body::Empty,
            wants_body: false,
            peer: None,
            started_ms: 0,
            now_ms: 0,
        }
    }

    /// Whether logs may carry subjects and credentials (`log.leak_sensitive_values`).
    pub fn leak_sensitive_values(&self) -> bool {
        self.filter.log.leak_sensitive_values
    }

    /// How the request was decided, once it has been.
    pub fn decision(&self) -> Option<&Decision> {
        self.decision.as_ref()
    }

    /// Whether the proxy should say who the peer is (`set_peer`) before the headers.
    pub fn reads_peer(&self) -> bool {
        self.filter.reads_remote_ip
    }

    /// The connection's peer address (`ip:port`).
    pub fn set_peer(&mut self, address: Option<String>) {
        self.peer = address;
    }

    /// The request has a body after its headers (the proxy said the stream did not end).
    pub fn body_follows(&mut self) {
        self.body = Body::Streaming;
    }

    /// Whether the proxy should hand over the whole body at the end of the stream.
    pub fn wants_body(&self) -> bool {
        self.wants_body && matches!(self.body, Body::Streaming)
    }

    /// The whole request body arrived: an authorizer waiting for it goes on.
    pub fn on_request_body(&mut self, body: Vec<u8>, env: &Env<'_>) -> Vec<Effect> {
        self.now_ms = env.now_ms;
        self.body = Body::Complete(body);
        match std::mem::replace(&mut self.state, State::Finished) {
            State::AwaitingBody { matched, identity } => {
                let rule = Rc::clone(&matched.rule);
                self.ask_authorizer(*matched, &rule, *identity)
            }
            other => {
                self.state = other;
                Vec::new()
            }
        }
    }

    /// Starts the pipeline from the request headers (pseudo-headers included).
    pub fn on_request_headers(
        &mut self,
        headers: Vec<(String, Vec<u8>)>,
        env: &Env<'_>,
    ) -> Vec<Effect> {
        if !matches!(self.state, State::Start) {
            return Vec::new();
        }
        self.started_ms = env.now_ms;
        self.now_ms = env.now_ms;
        let mut request = match Request::from_header_map(headers) {
            Ok(r) => r,
            Err(e) => return self.fail(&e, None, None, ""),
        };
        request.remote_addr = self.peer.take();
        let normalized = match path::normalize(&request.path) {
            Ok(n) => n,
            Err(e) => {
                return self.fail(
                    &PipelineError::BadRequest(e.to_string()),
                    Some(&request),
                    None,
                    "",
                )
            }
        };
        if let Some(effects) = self.answer_jwks(&request) {
            return effects;
        }
        let mut subject = String::with_capacity(
            request.scheme.len() + request.authority.len() + normalized.path.len() + 3,
        );
        subject.push_str(&request.scheme);
        subject.push_str("://");
        // Host names are case-insensitive and Envoy routes them so; match them lowercase.
        subject.extend(request.authority.chars().map(|c| c.to_ascii_lowercase()));
        subject.push_str(&normalized.path);
        let index = match self.filter.matcher.find(&request.method, &subject) {
            Found::One(i) => i,
            Found::None => {
                return self.fail(&PipelineError::NoRule, Some(&request), None, &subject)
            }
            Found::Many => {
                return self.fail(&PipelineError::ManyRules, Some(&request), None, &subject)
            }
        };
        let Some(rule) = self.filter.rules.get(index).map(Rc::clone) else {
            // The matcher holds one pattern per rule: a bug, answered, never forwarded.
            let e = PipelineError::Internal("rule index out of range".into());
            return self.fail(&e, Some(&request), None, &subject);
        };
        let captures = self
            .filter
            .matcher
            .get(index)
            .map(|p| p.captures(&subject))
            .unwrap_or_default();
        self.wants_body = rule.authorizer.needs_body();
        let matched = Matched {
            rule,
            captures,
            path: normalized.path.into_owned(),
            query: normalized.query.unwrap_or_default().to_string(),
            rewrite: normalized.rewrite,
            request,
        };
        self.authenticate(matched, 0, None, env)
    }

    /// Continues after a callout answered. `call` is the id from `Effect::Dispatch`.
    pub fn on_callout_result(
        &mut self,
        call: u32,
        result: CalloutResult,
        env: &Env<'_>,
    ) -> Vec<Effect> {
        self.now_ms = env.now_ms;
        match std::mem::replace(&mut self.state, State::Finished) {
            State::Calling {
                matched,
                authn,
                call: expected,
                pending,
            } if expected == call => {
                self.authenticate(*matched, authn, Some((pending, result)), env)
            }
            State::Authorizing {
                matched,
                identity,
                call: expected,
            } if expected == call => self.authorized(*matched, *identity, result),
            State::Mutating {
                matched,
                identity,
                next,
                call: expected,
                key,
            } if expected == call => {
                let rule = Rc::clone(&matched.rule);
                self.run_mutators(*matched, &rule, *identity, next, Some((result, key)))
            }
            other => {
                self.state = other;
                Vec::new()
            }
        }
    }

    /// Starts a parked request again after the request it waited on was answered.
    pub fn on_wake(&mut self, env: &Env<'_>) -> Vec<Effect> {
        self.now_ms = env.now_ms;
        match std::mem::replace(&mut self.state, State::Finished) {
            State::Waiting { matched, authn } => self.authenticate(*matched, authn, None, env),
            other => {
                self.state = other;
                Vec::new()
            }
        }
    }

    /// The request is going away: if others wait on its callout, they must be woken.
    pub fn abandon(&mut self) -> Vec<u32> {
        match std::mem::replace(&mut self.state, State::Finished) {
            State::Calling { pending, .. } => {
                self.vm.borrow_mut().authn.sessions.abandon(&pending.key)
            }
            _ => Vec::new(),
        }
    }

    /// `GET` on the JWKS endpoint: the `id_token` public keys, answered here.
    fn answer_jwks(&mut self, request: &Request) -> Option<Vec<Effect>> {
        let path = self.filter.jwks_endpoint.as_deref()?;
        let own = request.path.split('?').next() == Some(path)
            && matches!(request.method.as_str(), "GET" | "HEAD");
        if !own {
            return None;
        }
        let body = public_keys(&self.filter, &mut self.vm.borrow_mut());
        self.vm.borrow_mut().stats.decision(None, Some(200));
        self.state = State::Finished;
        self.decision = Some(Decision {
            rule: None,
            status: Some(200),
            reason: "jwks_endpoint",
            detail: None,
            subject: None,
            callouts: 0,
            started_ms: self.started_ms,
        });
        Some(vec![Effect::Reply(Reply {
            status: 200,
            headers: vec![
                ("content-type".into(), "application/json".into()),
                ("cache-control".into(), "max-age=60".into()),
            ],
            body,
        })])
    }

    /// The id of the next callout this request makes.
    fn dispatch_id(&mut self) -> u32 {
        let call = self.next_call;
        self.next_call = self.next_call.wrapping_add(1);
        call
    }

    /// Continues with the authorizer's answer.
    fn authorized(
        &mut self,
        matched: Matched,
        mut id: Identity,
        result: CalloutResult,
    ) -> Vec<Effect> {
        let rule = Rc::clone(&matched.rule);
        match rule.authorizer.resume(result) {
            Ok(forwarded) => {
                forwarded
                    .into_iter()
                    .for_each(|(k, v)| id.header.set(&k, v));
                self.run_mutators(matched, &rule, id, 0, None)
            }
            Err(e) => self.fail_in_rule(&e, &matched, &rule),
        }
    }

    /// Runs the authenticator chain from `from`; `answer` is that authenticator's callout
    /// result.
    fn authenticate(
        &mut self,
        matched: Matched,
        from: usize,
        mut answer: Option<(Pending, CalloutResult)>,
        env: &Env<'_>,
    ) -> Vec<Effect> {
        let rule = Rc::clone(&matched.rule);
        let rule = &*rule;
        let mut wake = Vec::new();
        let (index, step) = {
            let encoded = encode_path(&matched.path);
            let input = Input {
                request: &matched.request,
                path: &encoded,
                query: &matched.query,
            };
            let mut vm = self.vm.borrow_mut();
            let VmState {
                authn: caches,
                jwks,
                stats,
                ..
            } = &mut *vm;
            let mut ctx = Ctx {
                now_ms: env.now_ms,
                started_ms: self.started_ms,
                waiter: self.id,
                caches,
                jwks,
                stats,
                shared: env.shared,
                wake: &mut wake,
            };
            let mut last = (from, AuthnStep::NotResponsible);
            for (i, authn) in rule.authenticators.iter().enumerate().skip(from) {
                let step = match answer.take() {
                    Some((pending, result)) => authn.resume(&input, pending, result, &mut ctx),
                    None => authn.start(&input, &mut ctx),
                };
                if let Some(outcome) = step.outcome() {
                    ctx.stats.authenticator(authn.name(), outcome);
                }
                last = (i, step);
                if last.1 != AuthnStep::NotResponsible {
                    break;
                }
            }
            last
        };
        let mut effects = match step {
            AuthnStep::NotResponsible => {
                self.fail_in_rule(&PipelineError::Unauthorized(None), &matched, rule)
            }
            AuthnStep::Authenticated { subject, extra } => {
                self.authorize(matched, rule, subject, extra)
            }
            AuthnStep::Rejected(e) => self.fail_in_rule(&e, &matched, rule),
            AuthnStep::Call(callout, pending) => {
                let callout = with_trace_context(callout, &matched.request);
                let call = self.dispatch_id();
                self.state = State::Calling {
                    matched: Box::new(matched),
                    authn: index,
                    call,
                    pending,
                };
                vec![Effect::Dispatch(call, callout)]
            }
            AuthnStep::Wait => {
                self.state = State::Waiting {
                    matched: Box::new(matched),
                    authn: index,
                };
                Vec::new()
            }
        };
        if !wake.is_empty() {
            effects.push(Effect::Wake(wake));
        }
        effects
    }

    /// Runs the rule's authorizer, which may pause on a callout.
    fn authorize(
        &mut self,
        matched: Matched,
        rule: &Rule,
        subject: String,
        extra: Rc<serde_json::Value>,
    ) -> Vec<Effect> {
        // Go's nil map: reading a key of it yields nil, not an error.
        let extra = if extra.is_null() {
            Rc::new(serde_json::Value::Object(Default::default()))
        } else {
            extra
        };
        let id = Identity {
            subject,
            extra,
            header: Headers::default(),
        };
        if self.wants_body && matches!(self.body, Body::Streaming) {
            self.state = State::AwaitingBody {
                matched: Box::new(matched),
                identity: Box::new(id),
            };
            return Vec::new();
        }
        self.ask_authorizer(matched, rule, id)
    }

    fn ask_authorizer(&mut self, matched: Matched, rule: &Rule, id: Identity) -> Vec<Effect> {
        let body = match &self.body {
            Body::Complete(b) if self.wants_body => b.as_slice(),
            _ => &[],
        };
        let s = session(&matched, id);
        let step = rule.authorizer.start(&s, body);
        let mut id = identity(s);
        match step {
            AuthzStep::Allow(forwarded) => {
                forwarded
                    .into_iter()
                    .for_each(|(k, v)| id.header.set(&k, v));
                self.run_mutators(matched, rule, id, 0, None)
            }
            AuthzStep::Deny(e) => self.fail_in_rule(&e, &matched, rule),
            AuthzStep::Call(callout) => {
                let call = self.dispatch_id();
                let effect = Effect::Dispatch(call, with_trace_context(callout, &matched.request));
                self.state = State::Authorizing {
                    matched: Box::new(matched),
                    identity: Box::new(id),
                    call,
                };
                vec![effect]
            }
        }
    }

    /// Runs the mutators from `from` (a hydrator may pause on a callout; `answer` is its
    /// result), then forwards.
    fn run_mutators(
        &mut self,
        matched: Matched,
        rule: &Rule,
        mut id: Identity,
        from: usize,
        mut answer: Option<(CalloutResult, Digest)>,
    ) -> Vec<Effect> {
        for (i, m) in rule.mutators.iter().enumerate().skip(from) {
            let Mutator::Hydrator(h) = m else {
                let mut s = session(&matched, id);
                let outcome = match m {
                    Mutator::IdToken(t) => {
                        let vm = &mut *self.vm.borrow_mut();
                        t.mutate(&mut s, self.now_ms, &mut vm.mutate, &vm.jwks)
                    }
                    _ => m.mutate(&mut s),
                };
                id = identity(s);
                if let Err(e) = outcome {
                    return self.fail_in_rule(&e, &matched, rule);
                }
                continue;
            };
            let hydrated = match answer.take() {
                Some((result, key)) => {
                    let answered = Hydrator::answer(result, &id.subject);
                    if let (Ok(hy), Some(ttl)) = (&answered, h.cache_ms) {
                        let now = self.now_ms;
                        let bytes = 256
                            + hy.header
                                .iter()
                                .map(|(k, v)| k.len() + v.len())
                                .sum::<usize>();
                        self.vm.borrow_mut().mutate.hydrations.insert(
                            key,
                            hy.clone(),
                            bytes,
                            now + ttl,
                        );
                    }
                    answered
                }
                None => {
                    let s = session(&matched, id);
                    let (callout, key) = h.callout(&s);
                    id = identity(s);
                    let key = crate::cache::digest::digest(&key);
                    let now = self.now_ms;
                    let cached = h.cache_ms.and_then(|_| {
                        self.vm
                            .borrow_mut()
                            .mutate
                            .hydrations
                            .get(&key, now)
                            .cloned()
                    });
                    match cached {
                        Some(hit) => Ok(hit),
                        None => {
                            let call = self.dispatch_id();
                            let callout = with_trace_context(callout, &matched.request);
                            self.state = State::Mutating {
                                matched: Box::new(matched),
                                identity: Box::new(id),
                                next: i,
                                call,
                                key,
                            };
                            return vec![Effect::Dispatch(call, callout)];
                        }
                    }
                }
            };
            match hydrated {
                Ok(hy) => {
                    id.extra = hy.extra;
                    id.header = Headers::new(hy.header);
                }
                Err(e) => return self.fail_in_rule(&e, &matched, rule),
            }
        }
        let session = session(&matched, id);
        let matched = &matched;
        let mut effects = Vec::with_capacity(session.header.iter().count() + 2);
        for (name, value) in session.header.iter() {
            if !effect::valid_header_name(name) || !effect::valid_header_value(value) {
                let e = PipelineError::Internal(format!(
                    "header {name:?} is not a valid header name or would carry a control \
                     character; refusing to forward"
                ));
                return self.fail_in_rule(&e, matched, rule);
            }
            effects.push(Effect::SetHeader(name.to_string(), value.to_string()));
        }
        for name in &rule.strip {
            if matched.request.headers.contains(name) {
                effects.push(Effect::RemoveHeader(name.clone()));
            }
        }
        // CGI-style upstreams read `x_user_id` as `x-user-id`: a client's underscore spelling
        // of an identity header goes too.
        for (name, _) in matched.request.headers.iter() {
            if name.contains('_') && !session.header.contains(name) {
                let dashed = name.replace('_', "-");
                if rule.strip.contains(&dashed) || session.header.contains(&dashed) {
                    effects.push(Effect::RemoveHeader(name.to_string()));
                }
            }
        }
        if let Some(p) = &matched.rewrite {
            effects.push(Effect::SetHeader(":path".to_string(), p.clone()));
        }
        if matched.request.method_rewritten {
            let method = matched.request.method.clone();
            effects.push(Effect::SetHeader(":method".to_string(), method));
        }
        effects.push(Effect::Continue);
        self.state = State::Finished;
        self.vm.borrow_mut().stats.decision(Some(rule.index), None);
        self.decision = Some(Decision {
            rule: Some(Rc::clone(&rule.id)),
            status: None,
            reason: "allowed",
            detail: None,
            subject: Some(session.subject),
            callouts: self.next_call,
            started_ms: self.started_ms,
        });
        effects
    }

    fn fail_in_rule(
        &mut self,
        error: &PipelineError,
        matched: &Matched,
        rule: &Rule,
    ) -> Vec<Effect> {
        let mut url = String::new();
        matched.url().write(&mut url);
        self.fail(error, Some(&matched.request), Some(rule), &url)
    }

    fn fail(
        &mut self,
        error: &PipelineError,
        request: Option<&Request>,
        rule: Option<&Rule>,
        url: &str,
    ) -> Vec<Effect> {
        let index = rule.map(|r| r.index);
        let handlers: &[ErrorHandler] = rule.map_or(&[], |r| &r.errors);
        let reply: Reply = errors::respond(error, request, url, handlers, &self.filter.fallback);
        self.vm
            .borrow_mut()
            .stats
            .decision(index, Some(reply.status));
        self.state = State::Finished;
        self.decision = Some(Decision {
            rule: rule.map(|r| Rc::clone(&r.id)),
            status: Some(reply.status),
            reason: error.reason_id(),
            detail: error.reason().map(str::to_string),
            subject: None,
            callouts: self.next_call,
            started_ms: self.started_ms,
        });
        vec![Effect::Reply(reply)]
    }
}
