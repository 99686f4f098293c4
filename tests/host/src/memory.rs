//! Reading and writing the module's memory, and handing it host data the way proxy-wasm does:
//! bytes allocated with the module's own `proxy_on_memory_allocate`, pointer and size written
//! to the return slots it passed.

use crate::State;
use wasmtime::{Caller, Extern, Memory};

fn memory(caller: &mut Caller<'_, State>) -> Option<Memory> {
    match caller.get_export("memory") {
        Some(Extern::Memory(m)) => Some(m),
        _ => None,
    }
}

pub fn read(caller: &mut Caller<'_, State>, ptr: i32, len: i32) -> Option<Vec<u8>> {
    let m = memory(caller)?;
    let start = usize::try_from(ptr).ok()?;
    let end = start.checked_add(usize::try_from(len).ok()?)?;
    m.data(&caller).get(start..end).map(<[u8]>::to_vec)
}

pub fn read_string(caller: &mut Caller<'_, State>, ptr: i32, len: i32) -> Option<String> {
    read(caller, ptr, len).and_then(|b| String::from_utf8(b).ok())
}

pub fn write(caller: &mut Caller<'_, State>, ptr: i32, bytes: &[u8]) -> Option<()> {
    let m = memory(caller)?;
    m.write(caller, usize::try_from(ptr).ok()?, bytes).ok()
}

pub fn write_u32(caller: &mut Caller<'_, State>, ptr: i32, v: u32) -> Option<()> {
    write(caller, ptr, &v.to_le_bytes())
}

/// Copies `bytes` into memory the module allocates, and writes where and how long.
pub fn give(
    caller: &mut Caller<'_, State>,
    bytes: &[u8],
    ret_ptr: i32,
    ret_len: i32,
) -> Option<()> {
    let alloc = caller
        .get_export("proxy_on_memory_allocate")
        .or_else(|| caller.get_export("malloc"))?
        .into_func()?
        .typed::<i32, i32>(&caller)
        .ok()?;
    let ptr = alloc.call(&mut *caller, bytes.len() as i32).ok()?;
    write(caller, ptr, bytes)?;
    write_u32(caller, ret_ptr, ptr as u32)?;
    write_u32(caller, ret_len, bytes.len() as u32)
}

/// The proxy-wasm serialisation of a header map: count, (key length, value length) pairs, then
/// each key and value followed by a NUL.
pub fn serialize_pairs(pairs: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&(pairs.len() as u32).to_le_bytes());
    for (k, v) in pairs {
        out.extend_from_slice(&(k.len() as u32).to_le_bytes());
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
    }
    for (k, v) in pairs {
        out.extend_from_slice(k.as_bytes());
        out.push(0);
        out.extend_from_slice(v);
        out.push(0);
    }
    out
}

pub fn deserialize_pairs(bytes: &[u8]) -> Option<Vec<(String, String)>> {
    let word = |i: usize| -> Option<usize> {
        let b: [u8; 4] = bytes.get(i..i + 4)?.try_into().ok()?;
        Some(u32::from_le_bytes(b) as usize)
    };
    let n = word(0)?;
    let mut sizes = Vec::with_capacity(n);
    for i in 0..n {
        sizes.push((word(4 + i * 8)?, word(8 + i * 8)?));
    }
    let mut at = 4 + n * 8;
    let mut out = Vec::with_capacity(n);
    for (kl, vl) in sizes {
        let k = String::from_utf8(bytes.get(at..at + kl)?.to_vec()).ok()?;
        at += kl + 1;
        let v = String::from_utf8(bytes.get(at..at + vl)?.to_vec()).ok()?;
        at += vl + 1;
        out.push((k, v));
    }
    Some(out)
}
