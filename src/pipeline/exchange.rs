//! One request's pass through the pipeline, as a state machine: match one rule, run its
//! authenticators, authorizer and mutators (any of which may pause on a call, handing back its
//! own continuation), and answer with effects. Time and callout results are inputs; nothing
//! here talks to a proxy.
//!
//! The pipeline names no handler: each family answers through its step type, and a paused
//! request keeps the continuation it was given (`Resume`) until the call's answer arrives.

use super::decision::Decision;
use super::forward;
use super::matched::{identity, session, Identity, Matched};
use super::state;
use super::trace_context::with_trace_context;
use super::VmState;
use crate::authn::{self, AuthnStep, Input};
use crate::authz::{self, AuthzStep};
use crate::cache::SharedData;
use crate::errors::{self, ErrorHandler};
use crate::filter::{Filter, Rule};
use crate::mutate::{self, MutateStep};
use crate::rules::{path, Found};
use crate::vocab::callout::CalloutResult;
use crate::vocab::effect::{Effect, Reply};
use crate::vocab::percent::encode_path;
use crate::vocab::rejection::PipelineError;
use crate::vocab::request::{Headers, Request};
use std::cell::RefCell;
use std::rc::Rc;

/// Where a request stands.
enum State {
    Start,
    /// Waiting for call `call`; its answer goes to `then`.
    Calling {
        matched: Box<Matched>,
        call: u32,
        then: Resume,
    },
    /// Parked behind another request's identical call: authenticator `authn` starts again when
    /// woken.
    Waiting {
        matched: Box<Matched>,
        authn: usize,
    },
    /// Authenticated; the authorizer needs the request body, which is still arriving.
    AwaitingBody {
        matched: Box<Matched>,
        identity: Box<Identity>,
    },
    Finished,
}

/// Where a call's answer goes: the continuation a handler handed back, and what the pipeline
/// keeps beside it.
enum Resume {
    /// Authenticator `index` of the rule.
    Authn { index: usize, then: authn::Then },
    Authz {
        identity: Box<Identity>,
        then: authz::Then,
    },
    /// Mutator `index` of the rule; the ones after it run next.
    Mutate {
        identity: Box<Identity>,
        index: usize,
        then: mutate::Then,
    },
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
    /// The authenticator that settled the chain, and the subject it found.
    authenticated: Option<(&'static str, String)>,
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
            authenticated: None,
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
                call: expected,
                then,
            } if expected == call => match then {
                Resume::Authn { index, then } => {
                    self.authenticate(*matched, index, Some((then, result)), env)
                }
                Resume::Authz { identity, then } => {
                    let rule = Rc::clone(&matched.rule);
                    self.authorized(*matched, &rule, *identity, then.resume(result))
                }
                Resume::Mutate {
                    identity,
                    index,
                    then,
                } => {
                    let rule = Rc::clone(&matched.rule);
                    self.run_mutators(*matched, &rule, *identity, index, Some((then, result)))
                }
            },
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
            State::Calling {
                then: Resume::Authn { then, .. },
                ..
            } => self.vm.borrow_mut().authn.sessions.abandon(&then.leads),
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
        let body = self.public_keys();
        self.vm.borrow_mut().stats.decision(None, Some(200));
        self.state = State::Finished;
        self.decision = Some(Decision {
            rule: None,
            status: Some(200),
            reason: "jwks_endpoint",
            detail: None,
            subject: None,
            authenticator: None,
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

    /// The public keys of every signing mutator, as a JWKS document.
    fn public_keys(&self) -> String {
        let mut vm = self.vm.borrow_mut();
        let VmState {
            mutate: caches,
            jwks,
            ..
        } = &mut *vm;
        let mut ctx = mutate::Ctx {
            now_ms: self.now_ms,
            caches,
            jwks,
        };
        let mut keys: Vec<serde_json::Value> = Vec::new();
        for m in self.filter.rules.iter().flat_map(|r| r.mutators.iter()) {
            if let Some(public) = m.public_key(&mut ctx) {
                if !keys.contains(&public) {
                    keys.push(public);
                }
            }
        }
        serde_json::json!({ "keys": keys }).to_string()
    }

    /// The id of the next callout this request makes.
    fn dispatch_id(&mut self) -> u32 {
        let call = self.next_call;
        self.next_call = self.next_call.wrapping_add(1);
        call
    }

    /// Parks the request on `callout`; its answer goes to `then`.
    fn call(
        &mut self,
        matched: Matched,
        callout: crate::vocab::callout::Callout,
        then: Resume,
    ) -> Vec<Effect> {
        let callout = with_trace_context(callout, &matched.request);
        let call = self.dispatch_id();
        self.state = State::Calling {
            matched: Box::new(matched),
            call,
            then,
        };
        vec![Effect::Dispatch(call, callout)]
    }

    /// Runs the authenticator chain from `from`; `answer` is the answer to that authenticator's
    /// call, with its continuation.
    fn authenticate(
        &mut self,
        matched: Matched,
        from: usize,
        mut answer: Option<(authn::Then, CalloutResult)>,
        env: &Env<'_>,
    ) -> Vec<Effect> {
        let rule = Rc::clone(&matched.rule);
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
            let mut ctx = authn::Ctx {
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
                    Some((then, result)) => then.resume(result, &mut ctx),
                    None => authn.start(&input, &mut ctx),
                };
                if let Some(outcome) = step.outcome() {
                    ctx.stats.authenticator(authn.name(), outcome);
                }
                last = (i, step);
                if !matches!(last.1, AuthnStep::NotResponsible) {
                    break;
                }
            }
            last
        };
        let mut effects = match step {
            AuthnStep::NotResponsible => {
                self.fail_in_rule(&PipelineError::Unauthorized(None), &matched, &rule)
            }
            AuthnStep::Authenticated { subject, extra } => {
                let name = rule.authenticators.get(index).map(|a| a.name());
                self.authenticated = name.map(|n| (n, subject.clone()));
                self.authorize(matched, &rule, subject, extra)
            }
            AuthnStep::Rejected(e) => self.fail_in_rule(&e, &matched, &rule),
            AuthnStep::Call(callout, then) => {
                self.call(matched, callout, Resume::Authn { index, then })
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
        let id = identity(s);
        self.authorized(matched, rule, id, step)
    }

    /// Goes on from the authorizer's step.
    fn authorized(
        &mut self,
        matched: Matched,
        rule: &Rule,
        mut id: Identity,
        step: AuthzStep,
    ) -> Vec<Effect> {
        match step {
            AuthzStep::Allow(forwarded) => {
                forwarded
                    .into_iter()
                    .for_each(|(k, v)| id.header.set(&k, v));
                self.run_mutators(matched, rule, id, 0, None)
            }
            AuthzStep::Deny(e) => self.fail_in_rule(&e, &matched, rule),
            AuthzStep::Call(callout, then) => {
                let identity = Box::new(id);
                self.call(matched, callout, Resume::Authz { identity, then })
            }
        }
    }

    /// Runs the mutators from `from` (`answer` is the answer to that mutator's call, with its
    /// continuation), then forwards.
    fn run_mutators(
        &mut self,
        matched: Matched,
        rule: &Rule,
        id: Identity,
        from: usize,
        mut answer: Option<(mutate::Then, CalloutResult)>,
    ) -> Vec<Effect> {
        let mut s = session(&matched, id);
        let paused = {
            let mut vm = self.vm.borrow_mut();
            let VmState {
                mutate: caches,
                jwks,
                ..
            } = &mut *vm;
            let mut ctx = mutate::Ctx {
                now_ms: self.now_ms,
                caches,
                jwks,
            };
            let mut paused = None;
            for (i, m) in rule.mutators.iter().enumerate().skip(from) {
                let step = match answer.take() {
                    Some((then, result)) => then.resume(result, &mut s, &mut ctx),
                    None => m.start(&mut s, &mut ctx),
                };
                match step {
                    MutateStep::Done => {}
                    MutateStep::Failed(e) => {
                        paused = Some(Err(e));
                        break;
                    }
                    MutateStep::Call(callout, then) => {
                        paused = Some(Ok((i, callout, then)));
                        break;
                    }
                }
            }
            paused
        };
        match paused {
            None => {}
            Some(Err(e)) => {
                drop(s);
                return self.fail_in_rule(&e, &matched, rule);
            }
            Some(Ok((index, callout, then))) => {
                let identity = Box::new(identity(s));
                return self.call(
                    matched,
                    callout,
                    Resume::Mutate {
                        identity,
                        index,
                        then,
                    },
                );
            }
        }
        let authenticator = self.authenticated.as_ref().map(|(a, _)| *a);
        let effects =
            state::allowed(&self.filter, &rule.id, authenticator, &s).and_then(|mut e| {
                e.extend(forward::effects(&matched, rule, &s)?);
                Ok(e)
            });
        let effects = match effects {
            Ok(effects) => effects,
            Err(e) => {
                drop(s);
                return self.fail_in_rule(&e, &matched, rule);
            }
        };
        self.state = State::Finished;
        self.vm.borrow_mut().stats.decision(Some(rule.index), None);
        self.decision = Some(Decision {
            rule: Some(Rc::clone(&rule.id)),
            status: None,
            reason: "allowed",
            detail: None,
            subject: Some(s.subject),
            authenticator,
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
            authenticator: self.authenticated.as_ref().map(|(a, _)| *a),
            callouts: self.next_call,
            started_ms: self.started_ms,
        });
        let authenticated = self.authenticated.as_ref().map(|(a, s)| (*a, s.as_str()));
        let mut effects = state::denied(rule.map(|r| &*r.id), authenticated);
        effects.push(Effect::Reply(reply));
        effects
    }
}
