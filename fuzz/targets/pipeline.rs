//! Driving the host-free pipeline without a proxy: an in-memory shared-data store, a fixed
//! clock, and requests built from parts.

use portcullis::cache::SharedData;
use portcullis::filter::Filter;
use portcullis::pipeline::{Env, VmState};
use portcullis::vocab::callout::{Callout, CalloutResult};
use portcullis::vocab::effect::Effect;
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

/// 2024-06-01T00:00:00Z: a fixed clock keeps every run reproducible.
pub const NOW_MS: u64 = 1_717_200_000_000;

#[derive(Default)]
pub struct Store(RefCell<HashMap<String, (Vec<u8>, u32)>>);

impl SharedData for Store {
    fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        self.0.borrow().get(key).cloned()
    }
    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> bool {
        let mut map = self.0.borrow_mut();
        let current = map.get(key).map(|(_, c)| *c);
        if cas.is_some() && cas != current {
            return false;
        }
        let next = current.unwrap_or(0) + 1;
        map.insert(key.to_string(), (value.to_vec(), next));
        true
    }
}

/// A configuration the target relies on, loaded once per thread.
pub fn load(yaml: &str) -> Arc<Filter> {
    match portcullis::filter::load(yaml.as_bytes()) {
        Ok(f) => Arc::new(f),
        Err(e) => panic!("the target's own configuration is refused: {e}"),
    }
}

/// A header map as the proxy hands it over.
pub fn get(
    scheme: &str,
    authority: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Vec<(String, Vec<u8>)> {
    let mut map = vec![
        (":method".to_string(), b"GET".to_vec()),
        (":scheme".to_string(), scheme.as_bytes().to_vec()),
        (":authority".to_string(), authority.as_bytes().to_vec()),
        (":path".to_string(), path.as_bytes().to_vec()),
    ];
    map.extend(
        headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec())),
    );
    map
}

/// One VM with its state; requests run one after another against it.
pub struct Exchange {
    filter: Arc<Filter>,
    vm: std::rc::Rc<RefCell<VmState>>,
    store: Store,
    next_id: u32,
}

impl Exchange {
    pub fn new(filter: Arc<Filter>) -> Exchange {
        let vm = std::rc::Rc::new(RefCell::new(VmState::new(&filter)));
        Exchange {
            filter,
            vm,
            store: Store::default(),
            next_id: 1,
        }
    }

    fn env(&self) -> Env<'_> {
        Env {
            now_ms: NOW_MS,
            shared: &self.store,
        }
    }

    /// The effects of the request headers alone (a callout is left unanswered).
    pub fn start(&mut self, headers: Vec<(String, Vec<u8>)>) -> Vec<Effect> {
        let mut ex = portcullis::pipeline::Exchange::new(
            Arc::clone(&self.filter),
            std::rc::Rc::clone(&self.vm),
            self.next_id,
        );
        self.next_id += 1;
        ex.on_request_headers(headers, &self.env())
    }

    /// Runs a request to its end, answering each callout with `answer`; returns the callouts
    /// made and the final effects (the last is `Continue` or `Reply`).
    pub fn run(
        &mut self,
        headers: Vec<(String, Vec<u8>)>,
        answer: &dyn Fn(&Callout) -> CalloutResult,
    ) -> (Vec<Callout>, Vec<Effect>) {
        let mut ex = portcullis::pipeline::Exchange::new(
            Arc::clone(&self.filter),
            std::rc::Rc::clone(&self.vm),
            self.next_id,
        );
        self.next_id += 1;
        let mut calls = Vec::new();
        let mut effects = ex.on_request_headers(headers, &self.env());
        // A rule has a handful of callouts at most; a longer chain is a bug in itself.
        for _ in 0..8 {
            let Some(Effect::Dispatch(id, callout)) = effects
                .iter()
                .find(|e| matches!(e, Effect::Dispatch(..)))
                .cloned()
            else {
                break;
            };
            let result = answer(&callout);
            calls.push(callout);
            effects = ex.on_callout_result(id, result, &self.env());
        }
        assert!(
            matches!(effects.last(), Some(Effect::Continue | Effect::Reply(_))),
            "the request did not finish: {effects:?}"
        );
        (calls, effects)
    }
}

/// The local reply's status, or `None` when the request was forwarded.
pub fn status(effects: &[Effect]) -> Option<u32> {
    effects.iter().find_map(|e| match e {
        Effect::Reply(r) => Some(r.status),
        _ => None,
    })
}

/// The value the pipeline set for `name` upstream.
pub fn set_header<'a>(effects: &'a [Effect], name: &str) -> Option<&'a str> {
    effects.iter().find_map(|e| match e {
        Effect::SetHeader(n, v) if n.eq_ignore_ascii_case(name) => Some(v.as_str()),
        _ => None,
    })
}
