//! A proxy-wasm host (ABI 0.2.1) on wasmtime, for tests: it loads the release `portcullis.wasm`
//! and drives it as Envoy does — lifecycle, header maps, local replies, `http_call` with
//! response buffers (failure delivered as `(token, 0, 0, 0)`), shared data with Envoy's CAS,
//! ticks, metrics, logs — with time set by the test and all state per `Vm`, so tests run in
//! parallel and several VMs can share one shared-data store like Envoy workers do.

mod abi;
mod memory;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use wasmtime::{CallHook, Config, Engine, Instance, Linker, Module, Store};
use wasmtime_wasi::p1::WasiP1Ctx;

pub use abi::Status;

/// Shared data for all VMs of one proxy: key → (value, cas).
#[derive(Default)]
pub struct SharedData {
    map: HashMap<String, (Vec<u8>, u32)>,
    next_cas: u32,
}

impl SharedData {
    /// Envoy's semantics: a non-zero `cas` must match the current one; a missing key always
    /// takes the write.
    pub fn set(&mut self, key: &str, value: &[u8], cas: u32) -> Status {
        if let Some((_, current)) = self.map.get(key) {
            if cas != 0 && cas != *current {
                return Status::CasMismatch;
            }
        }
        self.next_cas += 1;
        self.map
            .insert(key.to_string(), (value.to_vec(), self.next_cas));
        Status::Ok
    }

    pub fn get(&self, key: &str) -> Option<&(Vec<u8>, u32)> {
        self.map.get(key)
    }
}

/// The peer requests come from unless a test says otherwise (as in the native tier).
pub const DEFAULT_PEER: &str = "192.0.2.10:40000";

/// A callout the module made.
#[derive(Debug, Clone)]
pub struct HttpCall {
    pub context: u32,
    pub token: u32,
    pub cluster: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub timeout_ms: u32,
}

/// A local reply the module sent.
#[derive(Debug, Clone)]
pub struct LocalReply {
    pub status: u32,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// What happened to one HTTP context.
#[derive(Debug, Default, Clone)]
pub struct Stream {
    pub request_headers: Vec<(String, Vec<u8>)>,
    /// What the proxy buffered of the request body.
    pub request_body: Vec<u8>,
    pub replies: Vec<LocalReply>,
    /// `on_request_headers` returned Continue, or the module called `continue_stream`.
    pub continued: bool,
    /// `proxy_set_property` on this stream: Envoy's filter state key (`wasm.` + the path) and
    /// the value, last write first replaced.
    pub filter_state: Vec<(String, Vec<u8>)>,
}

/// A `declare_property` call the module made: name, readonly, type, span.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Declared {
    pub name: String,
    pub readonly: bool,
    pub wasm_type: u64,
    pub span: u64,
    /// From which context it came (Envoy keeps the prototype of the root context only).
    pub context: u32,
}

/// The answer to deliver for a call.
#[derive(Debug, Clone)]
pub enum Answer {
    Response {
        status: u32,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// A reset, timeout or unknown cluster: `(token, 0, 0, 0)`.
    Failed,
}

/// The headers and body of the call answer being delivered.
pub(crate) type Delivered = (Vec<(String, String)>, Vec<u8>);

pub(crate) struct State {
    wasi: WasiP1Ctx,
    shared: Arc<Mutex<SharedData>>,
    now_ms: u64,
    config: Vec<u8>,
    effective: u32,
    streams: HashMap<u32, Stream>,
    calls: Vec<HttpCall>,
    next_token: u32,
    /// The call answer being delivered.
    answer: Option<Delivered>,
    tick_ms: u64,
    /// What `source.address` answers.
    peer: String,
    pub logs: Vec<(u32, String)>,
    metrics: Vec<(String, u32, i64)>,
    /// `declare_property` calls, in order.
    declared: Vec<Declared>,
    /// The host has Envoy's foreign functions; without them a call answers NotFound.
    foreign_functions: bool,
    /// Foreign functions by name (`proxy_call_foreign_function`).
    foreign: HashMap<String, ForeignFunction>,
    foreign_calls: u64,
    /// Calls from the module into the host (proxy-wasm and WASI imports alike).
    host_calls: u64,
}

/// A foreign function: the argument bytes to the answer's, or a proxy-wasm status code.
pub type ForeignFunction = Arc<dyn Fn(&[u8]) -> Result<Vec<u8>, u32> + Send + Sync>;

/// One compiled module, shared by the VMs of a test run.
pub struct Plugin {
    engine: Engine,
    module: Module,
}

impl Plugin {
    pub fn load(wasm: &std::path::Path) -> wasmtime::Result<Plugin> {
        let mut config = Config::new();
        config.consume_fuel(true);
        let engine = Engine::new(&config)?;
        let module = Module::from_file(&engine, wasm)?;
        Ok(Plugin { engine, module })
    }

    /// What the module imports, as `module.name`.
    pub fn imports(&self) -> Vec<String> {
        self.module
            .imports()
            .map(|i| format!("{}.{}", i.module(), i.name()))
            .collect()
    }
}

/// The root context's id; HTTP contexts use ids from 2.
pub const ROOT: u32 = 1;
const FUEL: u64 = u64::MAX / 2;

/// One VM (one Envoy worker).
pub struct Vm {
    store: Store<State>,
    instance: Instance,
}

impl Vm {
    pub fn new(
        plugin: &Plugin,
        shared: Arc<Mutex<SharedData>>,
        now_ms: u64,
    ) -> wasmtime::Result<Vm> {
        let mut linker: Linker<State> = Linker::new(&plugin.engine);
        wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |s: &mut State| &mut s.wasi)?;
        abi::add_to_linker(&mut linker)?;
        linker.define_unknown_imports_as_traps(&plugin.module)?;
        let state = State {
            wasi: wasmtime_wasi::WasiCtxBuilder::new().build_p1(),
            shared,
            now_ms,
            config: Vec::new(),
            effective: ROOT,
            streams: HashMap::new(),
            calls: Vec::new(),
            next_token: 0,
            answer: None,
            tick_ms: 0,
            peer: DEFAULT_PEER.to_string(),
            logs: Vec::new(),
            metrics: Vec::new(),
            declared: Vec::new(),
            foreign_functions: true,
            foreign: HashMap::new(),
            foreign_calls: 0,
            host_calls: 0,
        };
        let mut store = Store::new(&plugin.engine, state);
        store.set_fuel(FUEL)?;
        store.call_hook(|mut s, hook| {
            if matches!(hook, CallHook::CallingHost) {
                s.data_mut().host_calls += 1;
            }
            Ok(())
        });
        let instance = linker.instantiate(&mut store, &plugin.module)?;
        let mut vm = Vm { store, instance };
        if let Ok(init) = vm
            .instance
            .get_typed_func::<(), ()>(&mut vm.store, "_initialize")
        {
            init.call(&mut vm.store, ())?;
        }
        vm.call2("proxy_on_context_create", ROOT, 0)?;
        Ok(vm)
    }

    /// Registers a foreign function (before `configure`, which probes them).
    pub fn set_foreign(&mut self, name: &str, function: ForeignFunction) {
        self.store
            .data_mut()
            .foreign
            .insert(name.to_string(), function);
    }

    /// How many foreign-function calls the module made.
    pub fn foreign_calls(&self) -> u64 {
        self.store.data().foreign_calls
    }

    /// `proxy_on_vm_start` then `proxy_on_configure`; the module's answer.
    pub fn configure(&mut self, config: &[u8]) -> wasmtime::Result<bool> {
        self.store.data_mut().config = config.to_vec();
        let started = self.call2_ret("proxy_on_vm_start", ROOT, 0)?;
        let ok = self.call2_ret("proxy_on_configure", ROOT, config.len() as i32)?;
        Ok(started != 0 && ok != 0)
    }

    pub fn set_now_ms(&mut self, now_ms: u64) {
        self.store.data_mut().now_ms = now_ms;
    }

    pub fn tick_period_ms(&self) -> u64 {
        self.store.data().tick_ms
    }

    /// The downstream peer (`ip:port`) later requests come from.
    pub fn set_peer(&mut self, peer: &str) {
        self.store.data_mut().peer = peer.to_string();
    }

    pub fn tick(&mut self) -> wasmtime::Result<()> {
        self.store.data_mut().effective = ROOT;
        self.call1("proxy_on_tick", ROOT)
    }

    /// Starts a request on HTTP context `id`: create, then `on_request_headers`.
    pub fn send(&mut self, id: u32, headers: Vec<(String, Vec<u8>)>) -> wasmtime::Result<()> {
        self.send_with_body(id, headers, None)
    }

    /// As `send`; a body arrives whole right after the headers, as Envoy delivers it under
    /// `allow_on_headers_stop_iteration`.
    pub fn send_with_body(
        &mut self,
        id: u32,
        headers: Vec<(String, Vec<u8>)>,
        body: Option<Vec<u8>>,
    ) -> wasmtime::Result<()> {
        let n = headers.len() as i32;
        self.store.data_mut().streams.insert(
            id,
            Stream {
                request_headers: headers,
                ..Stream::default()
            },
        );
        self.call2("proxy_on_context_create", id, ROOT)?;
        self.store.data_mut().effective = id;
        let eos = i32::from(body.is_none());
        let mut action = self.call3_ret("proxy_on_request_headers", id, n, eos)?;
        if let Some(body) = body {
            let size = body.len() as i32;
            if let Some(s) = self.store.data_mut().streams.get_mut(&id) {
                s.request_body = body;
            }
            if action != 0 {
                action = self.call3_ret("proxy_on_request_body", id, size, 1)?;
            }
        }
        if action == 0 {
            if let Some(s) = self.store.data_mut().streams.get_mut(&id) {
                s.continued = true;
            }
        }
        Ok(())
    }

    /// Delivers the answer to call `token` to the context that made it.
    pub fn answer(&mut self, token: u32, answer: Answer) -> wasmtime::Result<()> {
        let context = self
            .calls()
            .iter()
            .find(|c| c.token == token)
            .map(|c| c.context)
            .ok_or_else(|| wasmtime::Error::msg(format!("no call with token {token}")))?;
        let (n, size) = match answer {
            Answer::Failed => {
                self.store.data_mut().answer = None;
                (0, 0)
            }
            Answer::Response {
                status,
                mut headers,
                body,
            } => {
                headers.insert(0, (":status".into(), status.to_string()));
                let counts = (headers.len() as i32, body.len() as i32);
                self.store.data_mut().answer = Some((headers, body));
                counts
            }
        };
        self.store.data_mut().effective = context;
        let f = self
            .instance
            .get_typed_func::<(i32, i32, i32, i32, i32), ()>(
                &mut self.store,
                "proxy_on_http_call_response",
            )?;
        f.call(&mut self.store, (context as i32, token as i32, n, size, 0))?;
        self.store.data_mut().answer = None;
        Ok(())
    }

    /// The stream is over: `on_done` and `on_delete`.
    pub fn done(&mut self, id: u32) -> wasmtime::Result<()> {
        self.store.data_mut().effective = id;
        self.call1_ret("proxy_on_done", id)?;
        self.call1("proxy_on_delete", id)
    }

    pub fn calls(&self) -> &[HttpCall] {
        &self.store.data().calls
    }

    pub fn stream(&self, id: u32) -> Option<&Stream> {
        self.store.data().streams.get(&id)
    }

    /// The `declare_property` calls the module made.
    pub fn declared(&self) -> &[Declared] {
        &self.store.data().declared
    }

    /// Makes the host one without Envoy's foreign functions (other proxies, older Envoys).
    pub fn without_foreign_functions(&mut self) {
        self.store.data_mut().foreign_functions = false;
    }

    pub fn logs(&self) -> &[(u32, String)] {
        &self.store.data().logs
    }

    /// A stat's value by full name.
    pub fn metric(&self, name: &str) -> Option<i64> {
        self.store
            .data()
            .metrics
            .iter()
            .find(|(n, ..)| n == name)
            .map(|(_, _, v)| *v)
    }

    /// Calls the module has made into the host so far.
    pub fn host_calls(&self) -> u64 {
        self.store.data().host_calls
    }

    /// Wasm instructions (fuel) consumed so far by this VM.
    pub fn fuel_used(&self) -> u64 {
        FUEL - self.store.get_fuel().unwrap_or(FUEL)
    }

    fn call1(&mut self, name: &str, a: u32) -> wasmtime::Result<()> {
        let f = self
            .instance
            .get_typed_func::<i32, ()>(&mut self.store, name)?;
        f.call(&mut self.store, a as i32)
    }

    fn call1_ret(&mut self, name: &str, a: u32) -> wasmtime::Result<i32> {
        let f = self
            .instance
            .get_typed_func::<i32, i32>(&mut self.store, name)?;
        f.call(&mut self.store, a as i32)
    }

    fn call2(&mut self, name: &str, a: u32, b: u32) -> wasmtime::Result<()> {
        let f = self
            .instance
            .get_typed_func::<(i32, i32), ()>(&mut self.store, name)?;
        f.call(&mut self.store, (a as i32, b as i32))
    }

    fn call2_ret(&mut self, name: &str, a: u32, b: i32) -> wasmtime::Result<i32> {
        let f = self
            .instance
            .get_typed_func::<(i32, i32), i32>(&mut self.store, name)?;
        f.call(&mut self.store, (a as i32, b))
    }

    fn call3_ret(&mut self, name: &str, a: u32, b: i32, c: i32) -> wasmtime::Result<i32> {
        let f = self
            .instance
            .get_typed_func::<(i32, i32, i32), i32>(&mut self.store, name)?;
        f.call(&mut self.store, (a as i32, b, c))
    }
}
