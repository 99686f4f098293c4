//! The crypto seam's hand-written codecs. `der`: ECDSA signatures between JWS `r || s` and DER,
//! and the key writers. `proto`: the foreign functions' protobuf messages, and what the host
//! backend makes of any answer a host could give.

use portcullis::jose::crypto::{Crypto, Foreign, HostCrypto, HostError, RustCrypto, Verdict};
use portcullis::jose::der::{
    ecdsa_der_to_jws, ecdsa_jws_to_der, pkcs8_ec, pkcs8_rsa, spki_ec, spki_rsa, Curve,
};
use portcullis::jose::jwk::KeySet;
use portcullis::jose::proto::{self, Arguments, SignResult, VerifyResult};

const TEST_KEYS: &[u8] = include_bytes!("../../tests/keys/jwks.json");

/// `width-selector bytes`: strict DER reads back to the bytes it came from, and `r || s`
/// survives the trip through DER.
pub fn der(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let width = [32, 48, 66][usize::from(selector % 3)];
    if let Some(jws) = ecdsa_der_to_jws(rest, width) {
        assert_eq!(jws.len(), 2 * width);
        assert_eq!(
            ecdsa_jws_to_der(&jws, width).as_deref(),
            Some(rest),
            "strict DER is canonical: it reads back to itself"
        );
    }
    match ecdsa_jws_to_der(rest, width) {
        Some(der) => {
            assert_eq!(rest.len(), 2 * width);
            assert!(der.len() <= 2 * width + 9, "{} bytes of DER", der.len());
            assert_eq!(ecdsa_der_to_jws(&der, width).as_deref(), Some(rest));
        }
        None => assert_ne!(rest.len(), 2 * width),
    }
    // The key writers take any bytes; their output is one DER SEQUENCE whose length says so.
    let parts: Vec<&[u8]> = rest.splitn(8, |&b| b == 0).collect();
    let part = |i: usize| parts.get(i).copied().unwrap_or_default();
    let curve = if selector & 1 == 0 {
        Curve::P256
    } else {
        Curve::P384
    };
    for der in [
        spki_rsa(part(0), part(1)),
        spki_ec(curve, part(0)),
        pkcs8_ec(curve, part(0), part(1)),
        pkcs8_rsa([0, 1, 2, 3, 4, 5, 6, 7].map(part)),
    ] {
        assert_eq!(der.first(), Some(&0x30));
        let (len, header) = match der.get(1) {
            Some(&n) if n < 0x80 => (usize::from(n), 2),
            Some(&n) => {
                let k = usize::from(n & 0x7f);
                let len = der[2..2 + k]
                    .iter()
                    .fold(0, |a, &b| (a << 8) | usize::from(b));
                assert!(len >= 0x80, "long form only when needed");
                (len, 2 + k)
            }
            None => panic!("no length"),
        };
        assert_eq!(header + len, der.len());
    }
}

/// A host whose every answer is these bytes.
struct Answers<'a>(&'a [u8]);

impl Foreign for Answers<'_> {
    fn call(&self, _: &str, _: &[u8]) -> Result<Vec<u8>, HostError> {
        Ok(self.0.to_vec())
    }
}

/// `message`: every decoder takes any bytes; what decodes re-encodes to the same value; and
/// the host backend counts an answer as a valid signature only when it decodes to
/// `result: true` — anything else is Rust's verdict (here on a forged ES256 signature).
pub fn proto(data: &[u8]) {
    if let Ok(v) = VerifyResult::decode(data) {
        assert_eq!(VerifyResult::decode(&v.encode()), Ok(v));
    }
    if let Ok(s) = SignResult::decode(data) {
        assert_eq!(SignResult::decode(&s.encode()), Ok(s));
    }
    if let Ok(a) = Arguments::decode(data) {
        let again = proto::verify_arguments(
            &String::from_utf8_lossy(a.field(1)),
            a.field(2),
            a.field(3),
            a.field(4),
        );
        let b = Arguments::decode(&again).expect("our own encoding decodes");
        if std::str::from_utf8(a.field(1)).is_ok() {
            for i in 1..=4 {
                assert_eq!(a.field(i), b.field(i), "field {i}");
            }
        }
    }
    thread_local! {
        static KEYS: KeySet = KeySet::parse(TEST_KEYS, true).expect("the committed test key set");
    }
    KEYS.with(|keys| ask_host(data, keys));
}

fn ask_host(data: &[u8], keys: &KeySet) {
    let Some(key) = keys.get("ec256-1") else {
        panic!("no ec256-1");
    };
    let input = "eyJhbGciOiJFUzI1NiJ9.e30";
    // r = s = 0: never valid, and Rust says so without curve arithmetic (fast fuzzing).
    let forged = [0u8; 64];
    let host = HostCrypto::new(Answers(data));
    let verdict = host.verify("ES256", key, input, &forged);
    match VerifyResult::decode(data) {
        Ok(VerifyResult { result: true, .. }) => assert_eq!(verdict, Verdict::Valid),
        Ok(_) => assert_eq!(verdict, Verdict::Invalid),
        Err(_) => assert_eq!(verdict, RustCrypto.verify("ES256", key, input, &forged)),
    }
    assert_ne!(
        RustCrypto.verify("ES256", key, input, &forged),
        Verdict::Valid
    );
    // A signing host: whatever it answers, a signature comes back only from `result: true`
    // with bytes (for ECDSA, strict DER of the right width).
    if let Ok(sig) = host.sign_on_host("ES256", b"key", input.as_bytes()) {
        assert_eq!(sig.len(), 64);
        let decoded = SignResult::decode(data).expect("an answer that signs decodes");
        assert!(decoded.result);
    }
}
