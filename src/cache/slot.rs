//! A session key's shared-data slot, where workers meet: its name, what it holds (nothing, an
//! in-flight marker, or a cached answer) and how each is encoded. `SessionCache` decides when
//! to read, claim, fill or release one.

use super::session::{Key, Outcome};
use super::SharedData;
use std::sync::Arc;

/// Shared-data slots: the key space is bounded because the host never evicts shared data.
pub const SLOTS: u32 = 4096;
/// Written once every slot exists (see `prepare`).
pub const PREPARED_KEY: &str = "portcullis.session.prepared";
/// A marker is exactly this long: key (32) | until_ms (8, LE). Answers are longer.
pub const MARKER_LEN: usize = 40;
/// What an unclaimed slot holds: not empty, because the proxy-wasm SDK reads an empty value as
/// no value (a null buffer), and a slot must be seen to exist to be claimed.
pub const FREE: &[u8] = &[0];

/// Creates the slots that do not exist yet, once per proxy (the first VM to configure): a
/// marker can only be claimed with CAS on a slot that exists.
pub fn prepare(shared: &dyn SharedData) {
    if shared.get(PREPARED_KEY).is_some() {
        return;
    }
    for slot in 0..SLOTS {
        let key = slot_name(slot);
        if shared.get(&key).is_none() {
            shared.set(&key, FREE, None);
        }
    }
    shared.set(PREPARED_KEY, &[1], None);
}

/// What a slot holds, for one key.
pub enum Slot {
    /// The key's answer, valid until the given time.
    Answer(Outcome, u64),
    /// A marker for the key, live until the given time.
    Marker(u64),
    /// A live marker of another key.
    Busy,
    /// Nothing live: empty, expired, or another key's answer.
    Free,
}

pub fn slot_name(slot: u32) -> String {
    format!("portcullis.session.{slot}")
}

pub fn slot_key(key: &Key) -> String {
    slot_name(u32::from_le_bytes([key[0], key[1], key[2], key[3]]) % SLOTS)
}

pub fn marker(key: &Key, until_ms: u64) -> [u8; MARKER_LEN] {
    let mut m = [0u8; MARKER_LEN];
    let (k, until) = m.split_at_mut(32);
    k.copy_from_slice(key);
    until.copy_from_slice(&until_ms.to_le_bytes());
    m
}

/// Clears this VM's marker, if the slot still holds it (CAS: a later claim is left alone).
pub fn release(shared: &dyn SharedData, key: &Key, until_ms: u64) {
    if let Some((value, cas)) = shared.get(&slot_key(key)) {
        if value == marker(key, until_ms) {
            shared.set(&slot_key(key), FREE, Some(cas));
        }
    }
}

/// Value: key (32) | expires_ms (8, LE) | subject length (4, LE) | subject | extra JSON.
/// Last writer wins (it replaces a marker too): a lost write only costs another worker a miss.
pub fn write_shared(
    shared: &dyn SharedData,
    key: &Key,
    outcome: &Outcome,
    expires_ms: u64,
) -> bool {
    let Outcome::Session { subject, extra } = outcome else {
        return false;
    };
    let extra = extra.to_string();
    let Ok(subject_len) = u32::try_from(subject.len()) else {
        return false;
    };
    let mut value = Vec::with_capacity(44 + subject.len() + extra.len());
    value.extend_from_slice(key);
    value.extend_from_slice(&expires_ms.to_le_bytes());
    value.extend_from_slice(&subject_len.to_le_bytes());
    value.extend_from_slice(subject.as_bytes());
    value.extend_from_slice(extra.as_bytes());
    shared.set(&slot_key(key), &value, None)
}

pub fn parse_slot(value: &[u8], key: &Key, now_ms: u64) -> Slot {
    let Some(until) = value
        .get(32..40)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_le_bytes)
    else {
        return Slot::Free;
    };
    let ours = value.get(..32) == Some(key.as_slice());
    let live = until > now_ms;
    match (value.len() == MARKER_LEN, ours, live) {
        (_, _, false) => Slot::Free,
        (true, true, true) => Slot::Marker(until),
        (true, false, true) => Slot::Busy,
        (false, false, true) => Slot::Free,
        (false, true, true) => match read_answer(value) {
            Some(outcome) => Slot::Answer(outcome, until),
            None => Slot::Free,
        },
    }
}

pub fn read_answer(value: &[u8]) -> Option<Outcome> {
    let subject_len = u32::from_le_bytes(value.get(40..44)?.try_into().ok()?) as usize;
    let subject = std::str::from_utf8(value.get(44..44 + subject_len)?).ok()?;
    let extra: serde_json::Value = serde_json::from_slice(value.get(44 + subject_len..)?).ok()?;
    Some(Outcome::Session {
        subject: subject.to_string(),
        extra: Arc::new(extra),
    })
}
