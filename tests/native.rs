//! The native tier: the HTTP-context logic and the core driven with a fake host, no proxy.
//! Every scenario table runs here; so do the cases a table cannot express (several requests
//! racing on one VM, several VMs sharing data).

mod common;

use common::scenario::{self, Ending, SeenCallout};
use portcullis::cache::SharedData;
use portcullis::pipeline::callout::{Callout, CalloutResult};
use portcullis::pipeline::effect::Reply;
use portcullis::pipeline::LogLevel;
use portcullis::proxy::host::Host;
use portcullis::proxy::http::{Flow, HttpFilter, Loaded};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

/// Proxy shared data: one store for all VMs of a test.
#[derive(Default)]
struct Store(RefCell<HashMap<String, Vec<u8>>>);

/// One VM: its configuration and its live contexts.
struct Vm {
    loaded: Loaded,
    store: Rc<Store>,
    contexts: RefCell<HashMap<u32, Rc<Ctx>>>,
    next_token: RefCell<u32>,
    /// Every callout any context dispatched, in order: (context, token, callout).
    dispatched: RefCell<Vec<(u32, u32, Callout)>>,
    now_ms: RefCell<u64>,
}

/// One HTTP context and what happened to its request.
struct Ctx {
    filter: RefCell<HttpFilter>,
    headers: RefCell<Vec<(String, Vec<u8>)>>,
    answer: RefCell<Option<CalloutResult>>,
    replies: RefCell<Vec<Reply>>,
    flow: RefCell<Option<Flow>>,
}

struct FakeHost<'a> {
    vm: &'a Vm,
    id: u32,
}

impl FakeHost<'_> {
    fn ctx(&self) -> Rc<Ctx> {
        Rc::clone(&self.vm.contexts.borrow()[&self.id])
    }
}

impl SharedData for FakeHost<'_> {
    fn get(&self, key: &str) -> Option<Vec<u8>> {
        self.vm.store.0.borrow().get(key).cloned()
    }
    fn set(&self, key: &str, value: &[u8]) {
        self.vm
            .store
            .0
            .borrow_mut()
            .insert(key.to_string(), value.to_vec());
    }
}

impl Host for FakeHost<'_> {
    fn request_headers(&self) -> Vec<(String, Vec<u8>)> {
        self.ctx().headers.borrow().clone()
    }
    fn set_request_header(&self, name: &str, value: &str) {
        let ctx = self.ctx();
        let mut h = ctx.headers.borrow_mut();
        h.retain(|(k, _)| k != name);
        h.push((name.to_string(), value.as_bytes().to_vec()));
    }
    fn remove_request_header(&self, name: &str) {
        self.ctx().headers.borrow_mut().retain(|(k, _)| k != name);
    }
    fn dispatch(&self, callout: &Callout) -> Option<u32> {
        let mut t = self.vm.next_token.borrow_mut();
        *t += 1;
        self.vm
            .dispatched
            .borrow_mut()
            .push((self.id, *t, callout.clone()));
        Some(*t)
    }
    fn callout_result(&self, _: usize, _: usize) -> CalloutResult {
        self.ctx()
            .answer
            .borrow_mut()
            .take()
            .unwrap_or(CalloutResult::Failed)
    }
    fn send_reply(&self, reply: &Reply) {
        self.ctx().replies.borrow_mut().push(reply.clone());
    }
    fn resume_request(&self) {
        *self.ctx().flow.borrow_mut() = Some(Flow::Continue);
    }
    fn now_ms(&self) -> u64 {
        *self.vm.now_ms.borrow()
    }
    fn wake(&self, id: u32) {
        let Some(ctx) = self.vm.contexts.borrow().get(&id).cloned() else {
            return;
        };
        ctx.filter
            .borrow_mut()
            .on_wake(&FakeHost { vm: self.vm, id });
    }
    fn log(&self, _: LogLevel, _: &str) {}
}

impl Vm {
    fn new(loaded: Loaded, store: Rc<Store>, now_ms: u64) -> Vm {
        Vm {
            loaded,
            store,
            contexts: RefCell::default(),
            next_token: RefCell::new(0),
            dispatched: RefCell::default(),
            now_ms: RefCell::new(now_ms),
        }
    }

    /// Starts a request in a new context.
    fn send(&self, id: u32, headers: Vec<(String, Vec<u8>)>) {
        let ctx = Rc::new(Ctx {
            filter: RefCell::new(HttpFilter::new(Some(&self.loaded), id)),
            headers: RefCell::new(headers),
            answer: RefCell::default(),
            replies: RefCell::default(),
            flow: RefCell::default(),
        });
        self.contexts.borrow_mut().insert(id, Rc::clone(&ctx));
        let flow = ctx
            .filter
            .borrow_mut()
            .on_request_headers(&FakeHost { vm: self, id });
        *ctx.flow.borrow_mut() = Some(flow);
    }

    /// Answers the callout with this token.
    fn answer(&self, token: u32, result: CalloutResult) {
        let id = self
            .dispatched
            .borrow()
            .iter()
            .find(|(_, t, _)| *t == token)
            .map(|(id, _, _)| *id)
            .expect("token");
        let ctx = Rc::clone(&self.contexts.borrow()[&id]);
        *ctx.answer.borrow_mut() = Some(result);
        ctx.filter
            .borrow_mut()
            .on_callout_response(&FakeHost { vm: self, id }, token, 1, 0);
    }

    fn done(&self, id: u32) {
        let ctx = Rc::clone(&self.contexts.borrow()[&id]);
        ctx.filter.borrow_mut().on_done(&FakeHost { vm: self, id });
        self.contexts.borrow_mut().remove(&id);
    }

    fn ending(&self, id: u32) -> Ending {
        let ctx = Rc::clone(&self.contexts.borrow()[&id]);
        let replies = ctx.replies.borrow();
        if replies.len() > 1 {
            return Ending::Stuck(format!("{} local replies", replies.len()));
        }
        let flow = *ctx.flow.borrow();
        let ending = match (replies.first(), flow) {
            (Some(r), _) => Ending::Reply {
                status: r.status,
                headers: r.headers.clone(),
                body: r.body.clone().into_bytes(),
            },
            (None, Some(Flow::Continue)) => Ending::Forward(ctx.headers.borrow().clone()),
            _ => Ending::Stuck("paused with no reply".into()),
        };
        ending
    }
}

fn run_case(loaded: Loaded, case: &scenario::Case) -> Result<(), String> {
    let vm = Vm::new(
        loaded,
        Rc::default(),
        case.time.unwrap_or(1_700_000_000) * 1000,
    );
    vm.send(1, scenario::request_headers(&case.request));
    for (i, spec) in case.callouts.iter().enumerate() {
        let (_, token, callout) = vm
            .dispatched
            .borrow()
            .get(i)
            .cloned()
            .ok_or_else(|| format!("callout {i} was never made"))?;
        let seen = SeenCallout {
            cluster: callout.cluster.clone(),
            headers: callout.headers.clone(),
            timeout_ms: callout.timeout_ms,
        };
        scenario::check_callout(&spec.expect, &seen).map_err(|e| format!("callout {i}: {e}"))?;
        vm.answer(token, result_of(&spec.respond));
    }
    let made = vm.dispatched.borrow().len();
    if made != case.callouts.len() {
        return Err(format!(
            "made {made} callouts, the table scripts {}",
            case.callouts.len()
        ));
    }
    scenario::check_ending(&case.expect, &vm.ending(1))
}

fn result_of(respond: &scenario::Respond) -> CalloutResult {
    if respond.fail {
        CalloutResult::Failed
    } else {
        CalloutResult::Response {
            status: respond.status.unwrap_or(200),
            headers: respond.headers.clone(),
            body: respond.body_bytes(),
        }
    }
}

#[test]
fn scenario_tables() {
    let mut failures = Vec::new();
    let mut ran = 0;
    for (path, table) in scenario::tables() {
        let bytes = scenario::config_bytes(&table);
        let name = scenario::display(&path);
        match (&table.config_error, portcullis::config::load(&bytes)) {
            (Some(want), Err(e)) => {
                ran += 1;
                if !e.to_string().contains(want.as_str()) {
                    failures.push(format!("{name}: error {e:?} lacks {want:?}"));
                }
            }
            (Some(want), Ok(_)) => {
                failures.push(format!("{name}: loaded, expected an error with {want:?}"))
            }
            (None, Err(e)) => failures.push(format!("{name}: config refused: {e}")),
            (None, Ok(filter)) => {
                let filter = Rc::new(filter);
                for case in &table.cases {
                    ran += 1;
                    let loaded = Loaded {
                        vm: Rc::new(RefCell::new(filter.new_state())),
                        filter: Rc::clone(&filter),
                    };
                    if let Err(e) = run_case(loaded, case) {
                        failures.push(format!("{} / {}: {e}", table.name, case.name));
                    }
                }
            }
        }
    }
    assert!(ran > 0, "no scenario ran");
    assert!(
        failures.is_empty(),
        "{} failing:\n{}",
        failures.len(),
        failures.join("\n")
    );
    println!("{ran} scenario cases passed");
}

#[test]
fn without_a_configuration_every_request_is_refused() {
    let vm = Vm::new(
        Loaded::new(portcullis::config::load(b"{}").unwrap()),
        Rc::default(),
        0,
    );
    let ctx = Rc::new(Ctx {
        filter: RefCell::new(HttpFilter::new(None, 1)),
        headers: RefCell::new(vec![(":path".into(), b"/".to_vec())]),
        answer: RefCell::default(),
        replies: RefCell::default(),
        flow: RefCell::default(),
    });
    vm.contexts.borrow_mut().insert(1, Rc::clone(&ctx));
    let flow = ctx
        .filter
        .borrow_mut()
        .on_request_headers(&FakeHost { vm: &vm, id: 1 });
    assert_eq!(flow, Flow::Pause);
    assert_eq!(
        ctx.replies
            .borrow()
            .iter()
            .map(|r| r.status)
            .collect::<Vec<_>>(),
        vec![500]
    );
}
