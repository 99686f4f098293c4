//! The native tier: every scenario table driven through the HTTP-context logic and the core
//! with a fake host, no proxy.

mod common;

use common::scenario::{self, Ending, SeenCallout};
use portcullis::pipeline::callout::{Callout, CalloutResult};
use portcullis::pipeline::effect::Reply;
use portcullis::pipeline::LogLevel;
use portcullis::proxy::host::Host;
use portcullis::proxy::http::{Flow, HttpFilter};
use std::cell::RefCell;
use std::rc::Rc;

#[derive(Default)]
struct FakeHost {
    headers: RefCell<Vec<(String, Vec<u8>)>>,
    dispatched: RefCell<Vec<(u32, Callout)>>,
    next_token: RefCell<u32>,
    answer: RefCell<Option<CalloutResult>>,
    reply: RefCell<Option<Reply>>,
    replies: RefCell<u32>,
    resumed: RefCell<bool>,
    now_ms: u64,
    logs: RefCell<Vec<String>>,
}

impl Host for FakeHost {
    fn request_headers(&self) -> Vec<(String, Vec<u8>)> {
        self.headers.borrow().clone()
    }
    fn set_request_header(&self, name: &str, value: &str) {
        let mut h = self.headers.borrow_mut();
        h.retain(|(k, _)| k != name);
        h.push((name.to_string(), value.as_bytes().to_vec()));
    }
    fn remove_request_header(&self, name: &str) {
        self.headers.borrow_mut().retain(|(k, _)| k != name);
    }
    fn dispatch(&self, callout: &Callout) -> Option<u32> {
        let mut t = self.next_token.borrow_mut();
        *t += 1;
        self.dispatched.borrow_mut().push((*t, callout.clone()));
        Some(*t)
    }
    fn callout_result(&self, _: usize, _: usize) -> CalloutResult {
        self.answer
            .borrow_mut()
            .take()
            .unwrap_or(CalloutResult::Failed)
    }
    fn send_reply(&self, reply: &Reply) {
        *self.replies.borrow_mut() += 1;
        *self.reply.borrow_mut() = Some(reply.clone());
    }
    fn resume_request(&self) {
        *self.resumed.borrow_mut() = true;
    }
    fn now_ms(&self) -> u64 {
        self.now_ms
    }
    fn log(&self, _: LogLevel, message: &str) {
        self.logs.borrow_mut().push(message.to_string());
    }
}

fn run_case(
    filter: &Rc<portcullis::pipeline::Filter>,
    case: &scenario::Case,
) -> Result<(), String> {
    let host = FakeHost {
        headers: RefCell::new(scenario::request_headers(&case.request)),
        now_ms: case.time.unwrap_or(1_700_000_000) * 1000,
        ..FakeHost::default()
    };
    let mut http = HttpFilter::new(Some(Rc::clone(filter)));
    let mut flow = http.on_request_headers(&host);
    for (i, spec) in case.callouts.iter().enumerate() {
        let (token, callout) = host
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
        let result = if spec.respond.fail {
            CalloutResult::Failed
        } else {
            CalloutResult::Response {
                status: spec.respond.status.unwrap_or(200),
                headers: spec.respond.headers.clone(),
                body: spec.respond.body_bytes(),
            }
        };
        *host.answer.borrow_mut() = Some(result);
        http.on_callout_response(&host, token, 1, 0);
        if *host.resumed.borrow() {
            flow = Flow::Continue;
        }
    }
    let made = host.dispatched.borrow().len();
    if made != case.callouts.len() {
        return Err(format!(
            "made {made} callouts, the table scripts {}",
            case.callouts.len()
        ));
    }
    if *host.replies.borrow() > 1 {
        return Err("more than one local reply".to_string());
    }
    let ending = match (flow, host.reply.borrow().clone()) {
        (_, Some(r)) => Ending::Reply {
            status: r.status,
            headers: r.headers,
            body: r.body.into_bytes(),
        },
        (Flow::Continue, None) => Ending::Forward(host.headers.borrow().clone()),
        (Flow::Pause, None) => Ending::Stuck("paused with no reply".into()),
    };
    scenario::check_ending(&case.expect, &ending)
}

#[test]
fn scenario_tables() {
    let mut failures = Vec::new();
    let mut ran = 0;
    for (path, table) in scenario::tables() {
        let bytes = scenario::config_bytes(&table);
        let loaded = portcullis::config::load(&bytes);
        match (&table.config_error, loaded) {
            (Some(want), Err(e)) => {
                ran += 1;
                if !e.to_string().contains(want.as_str()) {
                    failures.push(format!(
                        "{}: error {e:?} lacks {want:?}",
                        scenario::display(&path)
                    ));
                }
            }
            (Some(want), Ok(_)) => failures.push(format!(
                "{}: config loaded, expected an error containing {want:?}",
                scenario::display(&path)
            )),
            (None, Err(e)) => {
                failures.push(format!("{}: config refused: {e}", scenario::display(&path)))
            }
            (None, Ok(filter)) => {
                let filter = Rc::new(filter);
                for case in &table.cases {
                    ran += 1;
                    if let Err(e) = run_case(&filter, case) {
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
    let host = FakeHost {
        headers: RefCell::new(vec![(":path".into(), b"/".to_vec())]),
        ..FakeHost::default()
    };
    let mut http = HttpFilter::new(None);
    assert_eq!(http.on_request_headers(&host), Flow::Pause);
    assert_eq!(host.reply.borrow().as_ref().map(|r| r.status), Some(500));
}
