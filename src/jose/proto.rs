//! The four protobuf (proto3) messages of Envoy's `verify_signature` and `sign` foreign
//! functions, encoded and decoded by hand: two argument messages of strings and bytes, two
//! results of a bool, bytes and a string. A protobuf crate and its code generation would cost
//! more code in the module than these messages are.
//!
//! Decoding follows proto3: fields may come in any order, a repeated scalar field's last value
//! wins, unknown fields are skipped. Anything truncated or of the wrong wire type is an error.

use std::fmt;

/// `VerifySignatureArguments { string hash_function = 1; bytes public_key = 2;
/// bytes signature = 3; bytes text = 4; }` (the PEM field 5 is never sent).
pub fn verify_arguments(hash: &str, public_key: &[u8], signature: &[u8], text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(public_key.len() + signature.len() + text.len() + 24);
    field(&mut out, 1, hash.as_bytes());
    field(&mut out, 2, public_key);
    field(&mut out, 3, signature);
    field(&mut out, 4, text);
    out
}

/// `SignArguments { string hash_function = 1; bytes private_key = 2; bytes text = 3; }`.
pub fn sign_arguments(hash: &str, private_key: &[u8], text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(private_key.len() + text.len() + 20);
    field(&mut out, 1, hash.as_bytes());
    field(&mut out, 2, private_key);
    field(&mut out, 3, text);
    out
}

/// `VerifySignatureResult { bool result = 1; string error = 2; }`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyResult {
    pub result: bool,
    pub error: String,
}

/// `SignResult { bool result = 1; bytes signature = 2; string error = 3; }`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignResult {
    pub result: bool,
    pub signature: Vec<u8>,
    pub error: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtoError {
    Truncated,
    /// A varint longer than ten bytes.
    Overlong,
    /// A known field with another wire type than its declaration's.
    WireType(u64),
    /// Wire types 3 and 4 (groups) and 6, 7.
    UnknownWireType(u64),
    /// A `string` field that is not UTF-8.
    NotUtf8(u64),
}

impl fmt::Display for ProtoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtoError::Truncated => f.write_str("the message is truncated"),
            ProtoError::Overlong => f.write_str("a varint is longer than ten bytes"),
            ProtoError::WireType(n) => write!(f, "field {n} has the wrong wire type"),
            ProtoError::UnknownWireType(t) => write!(f, "wire type {t} is not supported"),
            ProtoError::NotUtf8(n) => write!(f, "string field {n} is not UTF-8"),
        }
    }
}

impl VerifyResult {
    pub fn decode(bytes: &[u8]) -> Result<VerifyResult, ProtoError> {
        let mut out = VerifyResult::default();
        for f in Fields(bytes) {
            match f? {
                (1, Value::Varint(v)) => out.result = v != 0,
                (2, Value::Bytes(b)) => out.error = string(2, b)?,
                (n @ (1 | 2), _) => return Err(ProtoError::WireType(n)),
                _ => {}
            }
        }
        Ok(out)
    }
}

impl SignResult {
    pub fn decode(bytes: &[u8]) -> Result<SignResult, ProtoError> {
        let mut out = SignResult::default();
        for f in Fields(bytes) {
            match f? {
                (1, Value::Varint(v)) => out.result = v != 0,
                (2, Value::Bytes(b)) => out.signature = b.to_vec(),
                (3, Value::Bytes(b)) => out.error = string(3, b)?,
                (n @ (1..=3), _) => return Err(ProtoError::WireType(n)),
                _ => {}
            }
        }
        Ok(out)
    }

    /// The encoding, for hosts written in Rust (tests, the CLI).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.signature.len() + self.error.len() + 8);
        if self.result {
            out.extend_from_slice(&[0x08, 0x01]);
        }
        if !self.signature.is_empty() {
            field(&mut out, 2, &self.signature);
        }
        if !self.error.is_empty() {
            field(&mut out, 3, self.error.as_bytes());
        }
        out
    }
}

impl VerifyResult {
    /// The encoding, for hosts written in Rust (tests, the CLI).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.error.len() + 4);
        if self.result {
            out.extend_from_slice(&[0x08, 0x01]);
        }
        if !self.error.is_empty() {
            field(&mut out, 2, self.error.as_bytes());
        }
        out
    }
}

/// The decoded arguments of either call, for hosts written in Rust: fields 1 to 4 by number,
/// empty where absent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Arguments {
    pub fields: [Vec<u8>; 5],
}

impl Arguments {
    pub fn decode(bytes: &[u8]) -> Result<Arguments, ProtoError> {
        let mut out = Arguments::default();
        for f in Fields(bytes) {
            match f? {
                (n @ 1..=5, Value::Bytes(b)) => {
                    if let Some(slot) = out.fields.get_mut((n - 1) as usize) {
                        *slot = b.to_vec();
                    }
                }
                (n @ 1..=5, _) => return Err(ProtoError::WireType(n)),
                _ => {}
            }
        }
        Ok(out)
    }

    pub fn field(&self, n: usize) -> &[u8] {
        n.checked_sub(1)
            .and_then(|i| self.fields.get(i))
            .map_or(&[][..], Vec::as_slice)
    }
}

fn string(n: u64, b: &[u8]) -> Result<String, ProtoError> {
    String::from_utf8(b.to_vec()).map_err(|_| ProtoError::NotUtf8(n))
}

/// A length-delimited field; proto3 leaves empty ones out.
fn field(out: &mut Vec<u8>, number: u64, value: &[u8]) {
    if value.is_empty() {
        return;
    }
    varint(out, (number << 3) | 2);
    varint(out, value.len() as u64);
    out.extend_from_slice(value);
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

enum Value<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

/// The fields of a message, in order; stops at the first error.
struct Fields<'a>(&'a [u8]);

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u64, Value<'a>), ProtoError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.0.is_empty() {
            return None;
        }
        let item = self.read();
        if item.is_err() {
            self.0 = &[];
        }
        Some(item)
    }
}

impl<'a> Fields<'a> {
    fn read(&mut self) -> Result<(u64, Value<'a>), ProtoError> {
        let key = self.varint()?;
        let number = key >> 3;
        let value = match key & 7 {
            0 => Value::Varint(self.varint()?),
            1 => self.skip(8)?,
            2 => {
                let len = usize::try_from(self.varint()?).map_err(|_| ProtoError::Truncated)?;
                let (b, rest) = (self.0.get(..len), self.0.get(len..));
                let (Some(b), Some(rest)) = (b, rest) else {
                    return Err(ProtoError::Truncated);
                };
                self.0 = rest;
                Value::Bytes(b)
            }
            5 => self.skip(4)?,
            t => return Err(ProtoError::UnknownWireType(t)),
        };
        Ok((number, value))
    }

    fn skip(&mut self, n: usize) -> Result<Value<'a>, ProtoError> {
        self.0 = self.0.get(n..).ok_or(ProtoError::Truncated)?;
        Ok(Value::Fixed)
    }

    fn varint(&mut self) -> Result<u64, ProtoError> {
        let mut v = 0u64;
        for i in 0..10 {
            let (&b, rest) = self.0.split_first().ok_or(ProtoError::Truncated)?;
            self.0 = rest;
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(ProtoError::Overlong)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_as_protoc_encodes_them() {
        let args = verify_arguments("sha256", b"K", b"SS", &[7u8; 200]);
        let mut expected = vec![0x0a, 6];
        expected.extend_from_slice(b"sha256");
        expected.extend_from_slice(&[0x12, 1, b'K', 0x1a, 2, b'S', b'S', 0x22, 0xc8, 0x01]);
        expected.extend_from_slice(&[7u8; 200]);
        assert_eq!(args, expected);
        let decoded = Arguments::decode(&args).unwrap();
        assert_eq!(decoded.field(1), b"sha256");
        assert_eq!(decoded.field(4), &[7u8; 200][..]);
        assert_eq!(decoded.field(5), b"");
        let sign = sign_arguments("sha384", b"P", b"T");
        assert_eq!(sign, b"\x0a\x06sha384\x12\x01P\x1a\x01T");
    }

    #[test]
    fn results_round_trip_and_skip_unknown_fields() {
        let r = VerifyResult {
            result: true,
            error: String::new(),
        };
        assert_eq!(VerifyResult::decode(&r.encode()).unwrap(), r);
        // Unknown fields of every wire type are skipped; the last `result` wins.
        let bytes = [
            0x08, 0x01, 0x18, 0x96, 0x01, 0x21, 0, 0, 0, 0, 0, 0, 0, 0, 0x2d, 0, 0, 0, 0, 0x32,
            0x01, b'x', 0x12, 0x02, b'n', b'o', 0x08, 0x00,
        ];
        let decoded = VerifyResult::decode(&bytes).unwrap();
        assert!(!decoded.result);
        assert_eq!(decoded.error, "no");
        let s = SignResult {
            result: true,
            signature: vec![1, 2, 3],
            error: "e".into(),
        };
        assert_eq!(SignResult::decode(&s.encode()).unwrap(), s);
        assert_eq!(VerifyResult::decode(&[]).unwrap(), VerifyResult::default());
    }

    #[test]
    fn refuses_malformed_messages() {
        for (bytes, err) in [
            (&[0x08][..], ProtoError::Truncated),
            (&[0x12, 0x05, b'a'], ProtoError::Truncated),
            (&[0x0a, 0x01, b'a'], ProtoError::WireType(1)),
            (&[0x10, 0x01], ProtoError::WireType(2)),
            (&[0x12, 0x01, 0xff], ProtoError::NotUtf8(2)),
            (&[0x0b], ProtoError::UnknownWireType(3)),
            (
                &[
                    0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
                ],
                ProtoError::Overlong,
            ),
            (&[0x21, 0, 0], ProtoError::Truncated),
        ] {
            assert_eq!(VerifyResult::decode(bytes), Err(err), "{bytes:02x?}");
        }
        assert_eq!(
            SignResult::decode(&[0x12, 0x80]),
            Err(ProtoError::Truncated)
        );
        assert_eq!(
            Arguments::decode(&[0x08, 0x01]),
            Err(ProtoError::WireType(1))
        );
    }
}
