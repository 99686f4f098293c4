//! The stages of one request after its rule is matched: authenticators, the authorizer (which
//! may wait for the body), mutators, then forwarding or the error handlers' reply. Each stage
//! that pauses on a call parks the request with the handler's continuation.

use super::{Body, Env, Exchange, Resume, State};
use crate::authn::{self, AuthnStep, Input};
use crate::authz::AuthzStep;
use crate::errors;
use crate::filter::Rule;
use crate::mutate::{self, MutateStep};
use crate::pipeline::decision::Decision;
use crate::pipeline::forward;
use crate::pipeline::matched::{identity, session, Identity, Matched};
use crate::pipeline::state;
use crate::pipeline::trace_context::with_trace_context;
use crate::pipeline::VmState;
use crate::vocab::callout::{Callout, CalloutResult};
use crate::vocab::effect::{Effect, Reply};
use crate::vocab::percent::encode_path;
use crate::vocab::rejection::PipelineError;
use crate::vocab::request::{Headers, Request};
use std::sync::Arc;

impl Exchange {
    /// Parks the request on `callout`; its answer goes to `then`.
    pub(super) fn call(&mut self, matched: Matched, callout: Callout, then: Resume) -> Vec<Effect> {
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
    pub(super) fn authenticate(
        &mut self,
        matched: Matched,
        from: usize,
        mut answer: Option<(authn::Then, CalloutResult)>,
        env: &Env<'_>,
    ) -> Vec<Effect> {
        let rule = Arc::clone(&matched.rule);
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
                self.fail_in_rule(&PipelineError::Unauthorized(None), &matched, &rule, None)
            }
            AuthnStep::Authenticated { subject, extra } => {
                self.authenticated = rule.authenticators.get(index).map(|a| a.name());
                self.authorize(matched, &rule, subject, extra)
            }
            AuthnStep::Rejected(e) => self.fail_in_rule(&e, &matched, &rule, None),
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
    pub(super) fn authorize(
        &mut self,
        matched: Matched,
        rule: &Rule,
        subject: String,
        extra: Arc<serde_json::Value>,
    ) -> Vec<Effect> {
        // Go's nil map: reading a key of it yields nil, not an error.
        let extra = if extra.is_null() {
            Arc::new(serde_json::Value::Object(Default::default()))
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

    pub(super) fn ask_authorizer(
        &mut self,
        matched: Matched,
        rule: &Rule,
        id: Identity,
    ) -> Vec<Effect> {
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
    pub(super) fn authorized(
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
            AuthzStep::Deny(e) => self.fail_in_rule(&e, &matched, rule, Some(&id.subject)),
            AuthzStep::Call(callout, then) => {
                let identity = Box::new(id);
                self.call(matched, callout, Resume::Authz { identity, then })
            }
        }
    }

    /// Runs the mutators from `from` (`answer` is the answer to that mutator's call, with its
    /// continuation), then forwards.
    pub(super) fn run_mutators(
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
            let mut ctx = vm.mutate_ctx(self.now_ms);
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
            Some(Err(e)) => return self.fail_in_rule(&e, &matched, rule, Some(&s.subject)),
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
        let authenticator = self.authenticated;
        // The facts, the identity headers, up to two rewrites and `Continue`, in one vector.
        let mut effects =
            Vec::with_capacity(8 + self.filter.state_keys.len() + s.header.iter().count());
        let built = state::allowed(&self.filter, &rule.id, authenticator, &s, &mut effects)
            .and_then(|()| forward::effects(&matched, rule, &s, &mut effects));
        if let Err(e) = built {
            return self.fail_in_rule(&e, &matched, rule, Some(&s.subject));
        }
        self.state = State::Finished;
        self.vm.borrow_mut().stats.decision(Some(rule.index), None);
        self.decision = Some(Decision {
            rule: Some(Arc::clone(&rule.id)),
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

    /// Refuses a request that matched `rule`; `subject` is who had authenticated, when the
    /// refusal came after that.
    pub(super) fn fail_in_rule(
        &mut self,
        error: &PipelineError,
        matched: &Matched,
        rule: &Rule,
        subject: Option<&str>,
    ) -> Vec<Effect> {
        let mut url = String::new();
        matched.url().write(&mut url);
        self.fail(error, Some(&matched.request), Some(rule), &url, subject)
    }

    pub(super) fn fail(
        &mut self,
        error: &PipelineError,
        request: Option<&Request>,
        rule: Option<&Rule>,
        url: &str,
        subject: Option<&str>,
    ) -> Vec<Effect> {
        let index = rule.map(|r| r.index);
        let handlers = errors::Handlers {
            rule: rule.map_or(&[], |r| &r.errors),
            fallback: &self.filter.fallback,
            leak: self.filter.log.leak_sensitive_values,
        };
        let reply: Reply = errors::respond(error, request, url, &handlers);
        self.vm
            .borrow_mut()
            .stats
            .decision(index, Some(reply.status));
        self.state = State::Finished;
        self.decision = Some(Decision {
            rule: rule.map(|r| Arc::clone(&r.id)),
            status: Some(reply.status),
            reason: error.reason_id(),
            detail: error.reason(),
            subject: None,
            authenticator: self.authenticated,
            callouts: self.next_call,
            started_ms: self.started_ms,
        });
        let authenticated = self.authenticated.zip(subject);
        let mut effects = state::denied(rule.map(|r| &*r.id), authenticated);
        effects.push(Effect::Reply(reply));
        effects
    }
}
