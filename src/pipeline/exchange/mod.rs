//! One request's pass through the pipeline, as a state machine: match one rule, run its
//! authenticators, authorizer and mutators (any of which may pause on a call, handing back its
//! own continuation), and answer with effects. Time and callout results are inputs; nothing
//! here talks to a proxy.
//!
//! The pipeline names no handler: each family answers through its step type, and a paused
//! request keeps the continuation it was given (`Resume`) until the call's answer arrives.

mod stages;

use super::decision::Decision;
use super::matched::{Identity, Matched};
use super::VmState;
use crate::authn;
use crate::authz;
use crate::cache::SharedData;
use crate::filter::Filter;
use crate::mutate;
use crate::rules::{self, path, Found};
use crate::vocab::callout::CalloutResult;
use crate::vocab::effect::{Effect, Reply};
use crate::vocab::rejection::{Bug, PipelineError};
use crate::vocab::request::Request;
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

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
    filter: Arc<Filter>,
    vm: Rc<RefCell<VmState>>,
    /// This request's id among the VM's requests (the proxy's context id).
    id: u32,
    state: State,
    next_call: u32,
    decision: Option<Decision>,
    /// The authenticator that settled the chain.
    authenticated: Option<&'static str>,
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
    pub fn new(filter: Arc<Filter>, vm: Rc<RefCell<VmState>>, id: u32) -> Exchange {
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
                let rule = Arc::clone(&matched.rule);
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
            Err(e) => return self.fail(&e, None, None, "", None),
        };
        request.remote_addr = self.peer.take();
        let normalized = match path::normalize(&request.path) {
            Ok(n) => n,
            Err(e) => {
                return self.fail(
                    &PipelineError::bad_request(e),
                    Some(&request),
                    None,
                    "",
                    None,
                )
            }
        };
        if let Some(effects) = self.answer_jwks(&request) {
            return effects;
        }
        let subject = rules::subject(&request.scheme, &request.authority, &normalized.path);
        let (found, captures) = self.filter.matcher.locate(&request.method, &subject);
        let index = match found {
            Found::One(i) => i,
            Found::None => {
                return self.fail(&PipelineError::NoRule, Some(&request), None, &subject, None)
            }
            Found::Many => {
                return self.fail(
                    &PipelineError::ManyRules,
                    Some(&request),
                    None,
                    &subject,
                    None,
                )
            }
        };
        let Some(rule) = self.filter.rules.get(index).map(Arc::clone) else {
            // The matcher holds one pattern per rule: a bug, answered, never forwarded.
            let e =
                PipelineError::internal(Bug("the matcher named a rule the configuration lacks"));
            return self.fail(&e, Some(&request), None, &subject, None);
        };
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
                    let rule = Arc::clone(&matched.rule);
                    self.authorized(*matched, &rule, *identity, then.resume(result))
                }
                Resume::Mutate {
                    identity,
                    index,
                    then,
                } => {
                    let rule = Arc::clone(&matched.rule);
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

    /// Whether a request of this VM has just started waiting on another VM's call, so the root
    /// context must tick fast to poll for its answer (true once per such start).
    pub fn take_poll_wanted(&self) -> bool {
        self.vm.borrow_mut().authn.sessions.get().take_poll_wanted()
    }

    /// The request is going away: if others wait on its callout, they must be woken (and its
    /// in-flight marker in shared data cleared).
    pub fn abandon(&mut self, shared: &dyn SharedData) -> Vec<u32> {
        match std::mem::replace(&mut self.state, State::Finished) {
            State::Calling {
                then: Resume::Authn { then, .. },
                ..
            } => self
                .vm
                .borrow_mut()
                .authn
                .sessions
                .get()
                .abandon(&then.leads, shared),
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
        let mut ctx = vm.mutate_ctx(self.now_ms);
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
}
