//! Same verdicts, proven: every algorithm through both crypto backends — the Rust one
//! (jwt-simple) and the host one over Envoy's foreign functions (emulated in
//! `support/envoy_crypto.rs` with the RustCrypto crates) — over valid tokens, forged signatures,
//! ECDSA signatures whose `r` or `s` starts with zero bytes, high `s`, `r` or `s` zero or past
//! the order, truncated and over-long signatures, DER where `r || s` belongs, keys of the wrong
//! type, other keys of the right type, and malformed keys. Where the host answers (RS*, ES*) the
//! test also asks it alone, so a fallback to Rust cannot pass for agreement.

#[path = "support/envoy_crypto.rs"]
mod envoy_crypto;
#[allow(dead_code)]
#[path = "../../common/mint.rs"]
mod mint;

use jwt_simple::prelude::*;
use portcullis::jose::crypto::{
    probe, Backend, Crypto, Foreign, HostCrypto, HostError, RustCrypto, Verdict,
};
use portcullis::jose::jwk::{Jwk, KeySet, Material};
use portcullis::jose::signer::Signer;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

/// Envoy's foreign functions, emulated; counts the calls.
#[derive(Default)]
struct Emulated {
    calls: AtomicU64,
}

impl Foreign for &Emulated {
    fn call(&self, function: &str, arguments: &[u8]) -> Result<Vec<u8>, HostError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let answer = match function {
            "verify_signature" => envoy_crypto::verify_signature(arguments),
            "sign" => envoy_crypto::sign(arguments),
            _ => return Err(HostError::NotFound),
        };
        answer.map_err(HostError::Failed)
    }
}

/// A host that answers every call with these bytes.
struct Answers(Vec<u8>);

impl Foreign for Answers {
    fn call(&self, _: &str, _: &[u8]) -> Result<Vec<u8>, HostError> {
        Ok(self.0.clone())
    }
}

struct NotFound;

impl Foreign for NotFound {
    fn call(&self, _: &str, _: &[u8]) -> Result<Vec<u8>, HostError> {
        Err(HostError::NotFound)
    }
}

fn keys_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../keys")
}

fn pem(name: &str) -> String {
    std::fs::read_to_string(keys_dir().join(format!("{name}.pem"))).expect("test key")
}

fn key_set() -> KeySet {
    KeySet::parse(
        &std::fs::read(keys_dir().join("jwks.json")).expect("jwks"),
        true,
    )
    .expect("a set")
}

const ALGORITHMS: &[&str] = &[
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA", "HS256",
    "HS384", "HS512",
];

/// The test key (and `kid`) that `mint` signs `alg` with.
fn kid_of(alg: &str) -> &'static str {
    mint::default_key(alg)
}

/// A token for `alg` with the test key, over claims that vary with `n`.
fn token(alg: &str, n: u64) -> String {
    mint::mint(&mint::JwtSpec {
        alg: alg.to_string(),
        key: None,
        kid: None,
        claims: serde_json::from_value(serde_json::json!({"sub": format!("user-{n}"), "n": n}))
            .expect("claims"),
        tamper: false,
    })
}

fn split(token: &str) -> (String, Vec<u8>) {
    let (input, sig) = token.rsplit_once('.').expect("three parts");
    (
        input.to_string(),
        Base64UrlSafeNoPadding::decode_to_vec(sig, None).expect("base64url"),
    )
}

fn width(alg: &str) -> Option<usize> {
    match alg {
        "ES256" => Some(32),
        "ES384" => Some(48),
        _ => None,
    }
}

fn order(alg: &str) -> Vec<u8> {
    let hex = match alg {
        "ES256" => "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551",
        _ => "ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973",
    };
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect()
}

/// `a - b` on big-endian numbers of one width.
fn minus(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; a.len()];
    let mut borrow = 0i16;
    for i in (0..a.len()).rev() {
        let mut d = a[i] as i16 - b[i] as i16 - borrow;
        borrow = i16::from(d < 0);
        if d < 0 {
            d += 256;
        }
        out[i] = d as u8;
    }
    out
}

/// The DER `ECDSA-Sig-Value` of `r || s`, written here independently of `jose::der`.
fn to_der(sig: &[u8], w: usize) -> Vec<u8> {
    let int = |v: &[u8]| {
        let v: Vec<u8> = v.iter().copied().skip_while(|&b| b == 0).collect();
        let mut c = if v.first().is_none_or(|&b| b >= 0x80) {
            vec![0]
        } else {
            vec![]
        };
        c.extend(v);
        let mut out = vec![2, c.len() as u8];
        out.extend(c);
        out
    };
    let body = [int(&sig[..w]), int(&sig[w..])].concat();
    [vec![0x30, body.len() as u8], body].concat()
}

struct Tally {
    cases: BTreeMap<&'static str, BTreeMap<&'static str, u32>>,
    host_answers: u64,
}

impl Tally {
    /// Both backends on one question: equal verdicts, the expected one where given, and for a
    /// host algorithm the host alone agreeing with Rust on valid/invalid.
    #[allow(clippy::too_many_arguments)]
    fn check(
        &mut self,
        host: &HostCrypto<&Emulated>,
        alg: &'static str,
        what: &'static str,
        key: &Jwk,
        input: &str,
        sig: &[u8],
        expected: Option<&Verdict>,
    ) {
        let rust = RustCrypto.verify(alg, key, input, sig);
        let via_host = host.verify(alg, key, input, sig);
        assert_eq!(rust, via_host, "{alg} {what}: the backends disagree");
        if let Some(e) = expected {
            assert_eq!(&rust, e, "{alg} {what}");
        }
        if let (Some(spki), true) = (key.spki.as_deref(), host_pair(alg, &key.material)) {
            if let Ok(alone) = host.verify_on_host(alg, spki, input.as_bytes(), sig) {
                self.host_answers += 1;
                assert_eq!(
                    alone,
                    rust == Verdict::Valid,
                    "{alg} {what}: the host alone says {alone}, Rust {rust:?}"
                );
            } else {
                panic!("{alg} {what}: the host gave no answer");
            }
        }
        *self.cases.entry(alg).or_default().entry(what).or_default() += 1;
    }
}

fn host_pair(alg: &str, m: &Material) -> bool {
    matches!(
        (m, alg),
        (Material::Rsa { .. }, "RS256" | "RS384" | "RS512")
            | (Material::P256(_), "ES256")
            | (Material::P384(_), "ES384")
    )
}

#[test]
fn every_algorithm_gets_the_same_verdict_from_both_backends() {
    let emulated = Emulated::default();
    let host = HostCrypto::new(&emulated);
    probe(&host).expect("the emulated host passes the probe");
    let set = key_set();
    let mut tally = Tally {
        cases: BTreeMap::new(),
        host_answers: 0,
    };
    let valid = Some(&Verdict::Valid);
    let invalid = Some(&Verdict::Invalid);
    for &alg in ALGORITHMS {
        let key = set.get(kid_of(alg)).expect("test key");
        // Valid tokens, and each forged by flipping one signature bit.
        for n in 0..8 {
            let (input, sig) = split(&token(alg, n));
            tally.check(&host, alg, "valid", key, &input, &sig, valid);
            let mut forged = sig.clone();
            let i = (n as usize * 7) % forged.len();
            forged[i] ^= 1 << (n % 8);
            tally.check(
                &host,
                alg,
                "forged signature",
                key,
                &input,
                &forged,
                invalid,
            );
            let mut other = input.clone();
            other.push(' ');
            tally.check(&host, alg, "other input", key, &other, &sig, None);
        }
        let (input, sig) = split(&token(alg, 100));
        // Truncated and over-long.
        for cut in [1, 2, sig.len() / 2, sig.len()] {
            let short = &sig[..sig.len() - cut];
            tally.check(&host, alg, "truncated", key, &input, short, None);
        }
        for extra in [&[0u8][..], &[0, 0], &sig] {
            let long = [&sig[..], extra].concat();
            tally.check(&host, alg, "over-long", key, &input, &long, None);
        }
        let leading_zero = [&[0u8][..], &sig].concat();
        tally.check(&host, alg, "over-long", key, &input, &leading_zero, None);
        // Keys of the wrong type, and another key of the right type.
        for other in ["rsa-2", "ec256-1", "ec384-1", "ed25519-1", "hmac-1"] {
            let k = set.get(other).expect("key");
            let what =
                if std::mem::discriminant(&k.material) == std::mem::discriminant(&key.material) {
                    "another key of the type"
                } else {
                    "a key of the wrong type"
                };
            if other == kid_of(alg) {
                continue;
            }
            tally.check(&host, alg, what, k, &input, &sig, None);
        }
        // Malformed keys: DER that does not parse (the host refuses it: Rust answers), and
        // material jwt-simple refuses (no DER is built for it).
        let mut bad_der = key.clone();
        if bad_der.spki.is_some() {
            bad_der.spki = Some(std::sync::Arc::from(&b"\x30\x03\x02\x01\x01"[..]));
            let via_host = host.verify(alg, &bad_der, &input, &sig);
            assert_eq!(
                via_host,
                Verdict::Valid,
                "{alg}: the Rust fallback still verifies"
            );
            assert!(
                host.verify_on_host(
                    alg,
                    bad_der.spki.as_deref().unwrap(),
                    input.as_bytes(),
                    &sig
                )
                .is_err(),
                "{alg}: a key that does not parse is a host error"
            );
            *tally
                .cases
                .entry(alg)
                .or_default()
                .entry("DER key the host refuses")
                .or_default() += 1;
        }
        let broken = KeySet::parse(
            br#"{"keys":[
              {"kty":"RSA","kid":"r","use":"sig","n":"AQAB","e":"AQAB"},
              {"kty":"EC","kid":"p","use":"sig","crv":"P-256","x":"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE","y":"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE"},
              {"kty":"EC","kid":"q","use":"sig","crv":"P-384","x":"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEB","y":"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEB"}
            ]}"#,
            true,
        )
        .expect("set");
        for kid in ["r", "p", "q"] {
            let k = broken
                .get(kid)
                .expect("kept, as the material is well-formed");
            assert!(
                k.spki.is_none(),
                "{kid}: no DER for a key jwt-simple refuses"
            );
            let v = RustCrypto.verify(alg, k, &input, &sig);
            assert_ne!(v, Verdict::Valid);
            tally.check(&host, alg, "malformed key", k, &input, &sig, None);
        }
        // ECDSA: DER where r || s belongs, r or s zero or past the order, high s.
        if let Some(w) = width(alg) {
            let der = to_der(&sig, w);
            tally.check(
                &host,
                alg,
                "DER instead of r||s",
                key,
                &input,
                &der,
                invalid,
            );
            let n = order(alg);
            let (r, s) = sig.split_at(w);
            for (what, bad) in [
                ("r = 0", [vec![0u8; w], s.to_vec()].concat()),
                ("s = 0", [r.to_vec(), vec![0u8; w]].concat()),
                ("r = n", [n.clone(), s.to_vec()].concat()),
                ("s = n", [r.to_vec(), n.clone()].concat()),
                ("r, s all ones", vec![0xff; 2 * w]),
            ] {
                tally.check(&host, alg, what, key, &input, &bad, invalid);
            }
            let high_s = [r.to_vec(), minus(&n, s)].concat();
            // BoringSSL accepts high s (it does not enforce low s), and so must Rust.
            tally.check(&host, alg, "high s (n - s)", key, &input, &high_s, valid);
        }
    }
    // ECDSA signatures whose r or s has leading zero bytes: about 1 in 256 each.
    for alg in ["ES256", "ES384"] {
        let key = set.get(kid_of(alg)).expect("key");
        let w = width(alg).expect("ecdsa");
        let (mut r0, mut s0) = (0, 0);
        for n in 0..6000 {
            let (input, sig) = split(&token(alg, 1000 + n));
            let (r_zero, s_zero) = (sig[0] == 0, sig[w] == 0);
            if r_zero {
                r0 += 1;
                tally.check(
                    &host,
                    alg,
                    "r with a leading zero byte",
                    key,
                    &input,
                    &sig,
                    valid,
                );
            }
            if s_zero {
                s0 += 1;
                tally.check(
                    &host,
                    alg,
                    "s with a leading zero byte",
                    key,
                    &input,
                    &sig,
                    valid,
                );
            }
            if r0 >= 2 && s0 >= 2 {
                break;
            }
        }
        assert!(
            r0 >= 1 && s0 >= 1,
            "{alg}: found {r0} r and {s0} s with a zero byte"
        );
    }
    for (alg, cases) in &tally.cases {
        let total: u32 = cases.values().sum();
        eprintln!("{alg}: {total} cases {cases:?}");
    }
    eprintln!("host answers: {}", tally.host_answers);
    assert!(
        tally.host_answers > 150,
        "the host answered {}",
        tally.host_answers
    );
    assert_eq!(tally.cases.len(), ALGORITHMS.len());
}

#[test]
fn a_host_error_or_odd_answer_is_never_a_valid_signature() {
    let set = key_set();
    let key = set.get("rsa-1").expect("key");
    let (input, sig) = split(&token("RS256", 1));
    let mut forged = sig.clone();
    forged[0] ^= 1;
    // Answers that do not decode, or that say yes to a forgery: the probe catches the second,
    // and neither survives `select`.
    for answer in [vec![0x08], vec![0x0b], vec![0x12, 0x05], vec![0x08, 0x01]] {
        let host = HostCrypto::new(Answers(answer.clone()));
        assert!(probe(&host).is_err(), "{answer:02x?} passes the probe");
        let (backend, why) = portcullis::jose::crypto::select(Answers(answer.clone()));
        assert_eq!(backend.name(), "rust", "{answer:02x?}");
        assert!(why.is_some());
        // A host backend used anyway: an undecodable answer is no answer, so Rust decides.
        if answer != [0x08, 0x01] {
            assert_eq!(host.verify("RS256", key, &input, &forged), Verdict::Invalid);
            assert_eq!(host.verify("RS256", key, &input, &sig), Verdict::Valid);
        }
    }
    // A host without the functions: Rust, and the reason says so.
    let (backend, why) = portcullis::jose::crypto::select(NotFound);
    assert_eq!(backend.name(), "rust");
    assert!(why.expect("a reason").is_not_found());
    let emulated: &'static Emulated = Box::leak(Box::default());
    let (backend, why) = portcullis::jose::crypto::select(emulated);
    assert_eq!((backend.name(), why), ("host", None));
}

/// The id_token signer through both backends: RSA tokens are the same bytes (PKCS#1 v1.5 is
/// deterministic and both write the same header and claims); ECDSA tokens verify either way.
#[test]
fn id_token_signatures_match_across_backends() {
    let emulated: &'static Emulated = Box::leak(Box::default());
    let host = Backend::host(emulated);
    let rust = Backend::rust();
    for (alg, key) in [
        ("RS256", "rsa-1"),
        ("RS384", "rsa-1"),
        ("RS512", "rsa-2"),
        ("ES256", "ec256-1"),
        ("ES384", "ec384-1"),
        ("PS256", "rsa-1"),
        ("EdDSA", "ed25519-1"),
    ] {
        let jwk = match alg {
            "ES256" => ES256KeyPair::from_pem(&pem(key))
                .unwrap()
                .with_key_id(key)
                .to_jwk(),
            "ES384" => ES384KeyPair::from_pem(&pem(key))
                .unwrap()
                .with_key_id(key)
                .to_jwk(),
            "EdDSA" => Ed25519KeyPair::from_pem(&pem(key))
                .unwrap()
                .with_key_id(key)
                .to_jwk(),
            _ => RS256KeyPair::from_pem(&pem(key))
                .unwrap()
                .with_key_id(key)
                .to_jwk(),
        };
        let mut jwk: serde_json::Value = serde_json::from_str(&jwk).expect("jwk");
        jwk["alg"] = alg.into();
        jwk["use"] = "sig".into();
        let doc = serde_json::json!({ "keys": [jwk] }).to_string();
        let signer = Signer::from_jwks(doc.as_bytes()).expect("signer");
        let claims: serde_json::Map<String, serde_json::Value> = serde_json::from_value(
            serde_json::json!({"sub": "alice", "iss": "https://issuer", "exp": 1_900_000_000u64, "iat": 1_700_000_000u64, "extra": {"a": [1, "b"]}}),
        )
        .unwrap();
        let before = emulated.calls.load(Ordering::Relaxed);
        let by_host = signer.sign(claims.clone(), &*host).expect("host sign");
        let by_rust = signer.sign(claims.clone(), &*rust).expect("rust sign");
        let host_signed = emulated.calls.load(Ordering::Relaxed) - before;
        let on_host = matches!(alg, "RS256" | "RS384" | "RS512" | "ES256" | "ES384");
        assert_eq!(host_signed, u64::from(on_host), "{alg}: host sign calls");
        let (h_input, _) = by_host.rsplit_once('.').unwrap();
        let (r_input, _) = by_rust.rsplit_once('.').unwrap();
        assert_eq!(h_input, r_input, "{alg}: the same header and claims");
        if alg.starts_with("RS") {
            assert_eq!(by_host, by_rust, "{alg}: the same bytes");
        }
        // Each verifies with the published key, through both backends.
        let public = KeySet::parse(
            serde_json::json!({ "keys": [signer.public.clone().expect("public")] })
                .to_string()
                .as_bytes(),
            true,
        )
        .unwrap();
        let pk = public.get(key).expect("public key");
        for t in [&by_host, &by_rust] {
            let (input, sig) = split(t);
            assert_eq!(
                RustCrypto.verify(alg, pk, &input, &sig),
                Verdict::Valid,
                "{alg}"
            );
            assert_eq!(host.verify(alg, pk, &input, &sig), Verdict::Valid, "{alg}");
        }
    }
}

/// The DER SubjectPublicKeyInfo written by hand in `jose::der` is the one jwt-simple's
/// encoders (the `spki` and `der` crates) write.
#[test]
fn hand_written_spki_matches_the_der_crates() {
    let set = key_set();
    for kid in ["rsa-1", "rsa-2", "ec256-1", "ec384-1"] {
        let key = set.get(kid).expect("key");
        let theirs = match &key.material {
            Material::Rsa { n, e } => RS256PublicKey::from_components(n, e).unwrap().to_der(),
            Material::P256(p) => ES256PublicKey::from_bytes(p).unwrap().to_der(),
            Material::P384(p) => ES384PublicKey::from_bytes(p).unwrap().to_der(),
            _ => unreachable!(),
        }
        .expect("der");
        assert_eq!(key.spki.as_deref(), Some(&theirs[..]), "{kid}");
    }
    for kid in ["ed25519-1", "hmac-1"] {
        assert!(set.get(kid).unwrap().spki.is_none(), "{kid}: no host key");
    }
}
