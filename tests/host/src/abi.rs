//! The `env.proxy_*` functions, as Envoy implements them for the calls portcullis makes. Any
//! other import traps (the linker defines unknown imports as traps), so a new host call shows
//! up as a failing test, not as silent success.

use crate::memory::{
    deserialize_pairs, give, read, read_string, serialize_pairs, write, write_u32,
};
use crate::{Declared, HttpCall, LocalReply, State};
use wasmtime::{Caller, Linker};

/// proxy-wasm status codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum Status {
    Ok = 0,
    NotFound = 1,
    BadArgument = 2,
    CasMismatch = 8,
}

const HTTP_REQUEST_HEADERS: i32 = 0;
const HTTP_CALL_RESPONSE_HEADERS: i32 = 6;
const HTTP_REQUEST_BODY: i32 = 0;
const HTTP_CALL_RESPONSE_BODY: i32 = 4;
const PLUGIN_CONFIGURATION: i32 = 7;

type C<'a> = Caller<'a, State>;

fn status(r: Option<Status>) -> i32 {
    r.unwrap_or(Status::BadArgument) as i32
}

fn headers_of(caller: &mut C<'_>, map: i32) -> Option<Vec<(String, Vec<u8>)>> {
    let s = caller.data();
    match map {
        HTTP_REQUEST_HEADERS => s
            .streams
            .get(&s.effective)
            .map(|st| st.request_headers.clone()),
        HTTP_CALL_RESPONSE_HEADERS => s.answer.as_ref().map(|(h, _)| {
            h.iter()
                .map(|(k, v)| (k.clone(), v.as_bytes().to_vec()))
                .collect()
        }),
        _ => None,
    }
}

fn edit_request(
    caller: &mut C<'_>,
    map: i32,
    f: impl FnOnce(&mut Vec<(String, Vec<u8>)>),
) -> Status {
    if map != HTTP_REQUEST_HEADERS {
        return Status::BadArgument;
    }
    let s = caller.data_mut();
    let id = s.effective;
    match s.streams.get_mut(&id) {
        Some(st) => {
            f(&mut st.request_headers);
            Status::Ok
        }
        None => Status::NotFound,
    }
}

pub fn add_to_linker(linker: &mut Linker<State>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "proxy_log",
        |mut c: C<'_>, level: i32, ptr: i32, len: i32| -> i32 {
            let msg = read_string(&mut c, ptr, len).unwrap_or_default();
            c.data_mut().logs.push((level as u32, msg));
            0
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_tick_period_milliseconds",
        |mut c: C<'_>, ms: i32| -> i32 {
            c.data_mut().tick_ms = ms as u32 as u64;
            0
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_current_time_nanoseconds",
        |mut c: C<'_>, ret: i32| -> i32 {
            let ns = c.data().now_ms.saturating_mul(1_000_000);
            status(write(&mut c, ret, &ns.to_le_bytes()).map(|_| Status::Ok))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_buffer_bytes",
        |mut c: C<'_>, kind: i32, start: i32, max: i32, ret_ptr: i32, ret_len: i32| -> i32 {
            let data = match kind {
                PLUGIN_CONFIGURATION => Some(c.data().config.clone()),
                HTTP_CALL_RESPONSE_BODY => c.data().answer.as_ref().map(|(_, b)| b.clone()),
                HTTP_REQUEST_BODY => {
                    let id = c.data().effective;
                    c.data().streams.get(&id).map(|s| s.request_body.clone())
                }
                _ => None,
            };
            let Some(data) = data else {
                return Status::NotFound as i32;
            };
            // Sizes are unsigned: the SDK asks for `usize::MAX` bytes as -1.
            let start = (start as u32 as usize).min(data.len());
            let end = start.saturating_add(max as u32 as usize).min(data.len());
            let slice = data.get(start..end).unwrap_or_default().to_vec();
            status(give(&mut c, &slice, ret_ptr, ret_len).map(|_| Status::Ok))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_header_map_pairs",
        |mut c: C<'_>, map: i32, ret_ptr: i32, ret_len: i32| -> i32 {
            let Some(pairs) = headers_of(&mut c, map) else {
                return Status::NotFound as i32;
            };
            let bytes = serialize_pairs(&pairs);
            status(give(&mut c, &bytes, ret_ptr, ret_len).map(|_| Status::Ok))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_header_map_value",
        |mut c: C<'_>, map: i32, kp: i32, kl: i32, ret_ptr: i32, ret_len: i32| -> i32 {
            let Some(key) = read_string(&mut c, kp, kl) else {
                return Status::BadArgument as i32;
            };
            let value = headers_of(&mut c, map).and_then(|h| {
                h.into_iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(&key))
                    .map(|(_, v)| v)
            });
            match value {
                Some(v) => status(give(&mut c, &v, ret_ptr, ret_len).map(|_| Status::Ok)),
                None => Status::NotFound as i32,
            }
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_header_map_pairs",
        |mut c: C<'_>, map: i32, ptr: i32, len: i32| -> i32 {
            let Some(pairs) = read(&mut c, ptr, len).and_then(|b| deserialize_pairs(&b)) else {
                return Status::BadArgument as i32;
            };
            edit_request(&mut c, map, |h| {
                *h = pairs
                    .into_iter()
                    .map(|(k, v)| (k.to_ascii_lowercase(), v.into_bytes()))
                    .collect();
            }) as i32
        },
    )?;
    for (name, replace) in [
        ("proxy_replace_header_map_value", true),
        ("proxy_add_header_map_value", false),
    ] {
        linker.func_wrap(
            "env",
            name,
            move |mut c: C<'_>, map: i32, kp: i32, kl: i32, vp: i32, vl: i32| -> i32 {
                let (Some(key), Some(value)) = (read_string(&mut c, kp, kl), read(&mut c, vp, vl))
                else {
                    return Status::BadArgument as i32;
                };
                let key = key.to_ascii_lowercase();
                edit_request(&mut c, map, |h| {
                    if replace {
                        h.retain(|(k, _)| *k != key);
                    }
                    h.push((key, value));
                }) as i32
            },
        )?;
    }
    linker.func_wrap(
        "env",
        "proxy_remove_header_map_value",
        |mut c: C<'_>, map: i32, kp: i32, kl: i32| -> i32 {
            let Some(key) = read_string(&mut c, kp, kl) else {
                return Status::BadArgument as i32;
            };
            let key = key.to_ascii_lowercase();
            edit_request(&mut c, map, |h| h.retain(|(k, _)| *k != key)) as i32
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_property",
        |mut c: C<'_>, pp: i32, pl: i32, ret_ptr: i32, ret_len: i32| -> i32 {
            // The path's segments are NUL-separated; only the peer address is known here.
            if read(&mut c, pp, pl).as_deref() != Some(&b"source\0address"[..]) {
                return Status::NotFound as i32;
            }
            let peer = c.data().peer.clone().into_bytes();
            status(give(&mut c, &peer, ret_ptr, ret_len).map(|_| Status::Ok))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_shared_data",
        |mut c: C<'_>, kp: i32, kl: i32, ret_ptr: i32, ret_len: i32, ret_cas: i32| -> i32 {
            let Some(key) = read_string(&mut c, kp, kl) else {
                return Status::BadArgument as i32;
            };
            let found = c
                .data()
                .shared
                .lock()
                .ok()
                .and_then(|s| s.get(&key).cloned());
            let Some((value, cas)) = found else {
                return Status::NotFound as i32;
            };
            let r = give(&mut c, &value, ret_ptr, ret_len)
                .and_then(|_| write_u32(&mut c, ret_cas, cas));
            status(r.map(|_| Status::Ok))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_shared_data",
        |mut c: C<'_>, kp: i32, kl: i32, vp: i32, vl: i32, cas: i32| -> i32 {
            let (Some(key), Some(value)) = (read_string(&mut c, kp, kl), read(&mut c, vp, vl))
            else {
                return Status::BadArgument as i32;
            };
            let shared = c.data().shared.clone();
            let result = match shared.lock() {
                Ok(mut s) => s.set(&key, &value, cas as u32),
                Err(_) => Status::BadArgument,
            };
            result as i32
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_continue_stream",
        |mut c: C<'_>, _: i32| -> i32 {
            let s = c.data_mut();
            let id = s.effective;
            match s.streams.get_mut(&id) {
                Some(st) => {
                    st.continued = true;
                    0
                }
                None => Status::NotFound as i32,
            }
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_send_local_response",
        |mut c: C<'_>,
         code: i32,
         _dp: i32,
         _dl: i32,
         bp: i32,
         bl: i32,
         hp: i32,
         hl: i32,
         _grpc: i32|
         -> i32 {
            let body = read(&mut c, bp, bl).unwrap_or_default();
            let headers = read(&mut c, hp, hl)
                .and_then(|b| deserialize_pairs(&b))
                .unwrap_or_default();
            let s = c.data_mut();
            let id = s.effective;
            match s.streams.get_mut(&id) {
                Some(st) => {
                    st.replies.push(LocalReply {
                        status: code as u32,
                        headers,
                        body,
                    });
                    0
                }
                None => Status::NotFound as i32,
            }
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_http_call",
        |mut c: C<'_>,
         up: i32,
         ul: i32,
         hp: i32,
         hl: i32,
         bp: i32,
         bl: i32,
         _tp: i32,
         _tl: i32,
         timeout: i32,
         ret: i32|
         -> i32 {
            let (Some(cluster), Some(headers)) = (
                read_string(&mut c, up, ul),
                read(&mut c, hp, hl).and_then(|b| deserialize_pairs(&b)),
            ) else {
                return Status::BadArgument as i32;
            };
            let body = read(&mut c, bp, bl).unwrap_or_default();
            let s = c.data_mut();
            s.next_token += 1;
            let token = s.next_token;
            let call = HttpCall {
                context: s.effective,
                token,
                cluster,
                headers,
                body,
                timeout_ms: timeout as u32,
            };
            s.calls.push(call);
            status(write_u32(&mut c, ret, token).map(|_| Status::Ok))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_effective_context",
        |mut c: C<'_>, id: i32| -> i32 {
            let s = c.data_mut();
            if id as u32 != crate::ROOT && !s.streams.contains_key(&(id as u32)) {
                return Status::BadArgument as i32;
            }
            s.effective = id as u32;
            0
        },
    )?;
    linker.func_wrap("env", "proxy_done", |_: C<'_>| -> i32 { 0 })?;
    linker.func_wrap(
        "env",
        "proxy_set_property",
        |mut c: C<'_>, pp: i32, pl: i32, vp: i32, vl: i32| -> i32 {
            let (Some(path), Some(value)) = (read(&mut c, pp, pl), read(&mut c, vp, vl)) else {
                return Status::BadArgument as i32;
            };
            // Envoy joins several segments with NUL into one key; portcullis sends one.
            let key = format!("wasm.{}", String::from_utf8_lossy(&path));
            let s = c.data_mut();
            let id = s.effective;
            match s.streams.get_mut(&id) {
                Some(st) => {
                    st.filter_state.retain(|(k, _)| *k != key);
                    st.filter_state.push((key, value));
                    0
                }
                None => Status::NotFound as i32,
            }
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_call_foreign_function",
        |mut c: C<'_>, np: i32, nl: i32, ap: i32, al: i32, ret_ptr: i32, ret_len: i32| -> i32 {
            let (Some(name), Some(args)) = (read_string(&mut c, np, nl), read(&mut c, ap, al))
            else {
                return Status::BadArgument as i32;
            };
            // Envoy's filter-state declarations, kept for the tests to read.
            if name == "declare_property" {
                if !c.data().foreign_functions {
                    return Status::NotFound as i32;
                }
                let Some(mut declared) = declare_arguments(&args) else {
                    return Status::BadArgument as i32;
                };
                let s = c.data_mut();
                declared.context = s.effective;
                // Envoy refuses a second declaration of a name.
                if s.declared.iter().any(|d| d.name == declared.name) {
                    return Status::BadArgument as i32;
                }
                s.declared.push(declared);
                return 0;
            }
            // Registered by the test, like Envoy's `verify_signature` and `sign`; a host
            // without them answers NotFound.
            let Some(function) = c.data().foreign.get(&name).cloned() else {
                return Status::NotFound as i32;
            };
            c.data_mut().foreign_calls += 1;
            match function(&args) {
                Ok(answer) => status(give(&mut c, &answer, ret_ptr, ret_len).map(|_| Status::Ok)),
                Err(code) => code as i32,
            }
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_define_metric",
        |mut c: C<'_>, kind: i32, np: i32, nl: i32, ret: i32| -> i32 {
            let Some(name) = read_string(&mut c, np, nl) else {
                return Status::BadArgument as i32;
            };
            let m = &mut c.data_mut().metrics;
            let id = match m.iter().position(|(n, ..)| *n == name) {
                Some(i) => i,
                None => {
                    m.push((name, kind as u32, 0));
                    m.len() - 1
                }
            };
            status(write_u32(&mut c, ret, id as u32).map(|_| Status::Ok))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_increment_metric",
        |mut c: C<'_>, id: i32, by: i64| -> i32 {
            match c.data_mut().metrics.get_mut(id as usize) {
                Some(m) => {
                    m.2 += by;
                    0
                }
                None => Status::NotFound as i32,
            }
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_record_metric",
        |mut c: C<'_>, id: i32, value: i64| -> i32 {
            match c.data_mut().metrics.get_mut(id as usize) {
                Some(m) => {
                    m.2 = value;
                    0
                }
                None => Status::NotFound as i32,
            }
        },
    )?;
    Ok(())
}

/// Parses `DeclarePropertyArguments { string name = 1; bool readonly = 2; WasmType type = 3;
/// bytes schema = 4; LifeSpan span = 5; }` as Envoy's protobuf parser would.
fn declare_arguments(mut bytes: &[u8]) -> Option<Declared> {
    fn varint(bytes: &mut &[u8]) -> Option<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let (&b, rest) = bytes.split_first()?;
            *bytes = rest;
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }
    let mut d = Declared {
        name: String::new(),
        readonly: false,
        wasm_type: 0,
        span: 0,
        context: 0,
    };
    while !bytes.is_empty() {
        let tag = varint(&mut bytes)?;
        match (tag >> 3, tag & 7) {
            (1 | 4, 2) => {
                let len = usize::try_from(varint(&mut bytes)?).ok()?;
                if len > bytes.len() {
                    return None;
                }
                let (field, rest) = bytes.split_at(len);
                bytes = rest;
                if tag >> 3 == 1 {
                    d.name = String::from_utf8(field.to_vec()).ok()?;
                }
            }
            (2, 0) => d.readonly = varint(&mut bytes)? != 0,
            (3, 0) => d.wasm_type = varint(&mut bytes)?,
            (5, 0) => d.span = varint(&mut bytes)?,
            _ => return None,
        }
    }
    Some(d)
}
