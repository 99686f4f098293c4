//! The crypto seam: who checks (and makes) a JWS signature. Two backends:
//!
//! - `Rust`: jwt-simple, in the module. Every algorithm.
//! - `Host`: the proxy's own crypto through foreign functions (Envoy's `verify_signature` and
//!   `sign`, BoringSSL), for RS256/384/512 and ES256/384, with keys as DER prepared once when
//!   the key set is parsed. Everything else (PS*, EdDSA, HS*), a key the host cannot take, and
//!   any host error or unexpected answer goes to the Rust backend: the host's answer counts only
//!   when it is a well-formed `result: true` or `false`.
//!
//! The backend is chosen once per configuration by `select`, which asks the host a known-answer
//! question first.

use super::der;
use super::jwk::{Jwk, Material};
use super::proto::{self, SignResult, VerifyResult};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jwt_simple::prelude::*;
use jwt_simple::JWTError;
use std::fmt;
use std::sync::Arc;

/// The answer to "is this the signature of this input under this key".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Valid,
    /// A well-formed question whose answer is no.
    Invalid,
    /// No answer (a key or algorithm the verifier refuses): never a valid signature.
    Error(String),
}

/// Why a host call gave no usable answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostError {
    /// The host has no such function.
    NotFound,
    /// The call failed (the host's status code).
    Failed(u32),
    /// The answer does not decode.
    Malformed(proto::ProtoError),
    /// `sign` answered `result: false`, or a signature that is not what the algorithm makes.
    Refused(String),
}

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostError::NotFound => f.write_str("the host has no such foreign function"),
            HostError::Failed(status) => write!(f, "the foreign function failed (status {status})"),
            HostError::Malformed(e) => write!(f, "the foreign function's answer is malformed: {e}"),
            HostError::Refused(why) => write!(f, "the host refused: {why}"),
        }
    }
}

/// A proxy's foreign functions (proxy-wasm's `proxy_call_foreign_function`).
pub trait Foreign: Send + Sync {
    fn call(&self, function: &str, arguments: &[u8]) -> Result<Vec<u8>, HostError>;
}

/// What signs and verifies.
pub trait Crypto: Send + Sync {
    /// `rust` or `host`, for logs and stats.
    fn name(&self) -> &'static str;
    /// Checks `signature` over a JWS signing input (`header.payload`, as in the token).
    fn verify(&self, alg: &str, key: &Jwk, signing_input: &str, signature: &[u8]) -> Verdict;
    /// The JWS signature of `signing_input`, or `None` when this backend leaves the key to
    /// jwt-simple (which signs whole tokens: it has no raw-signature API).
    fn sign(&self, alg: &str, pkcs8: &[u8], signing_input: &str) -> Option<Vec<u8>>;
    /// Whether `verify` reads each key's DER SubjectPublicKeyInfo (`Jwk::spki`), which a key
    /// set then builds once as it loads; a backend that does not is spared that work.
    fn reads_spki(&self) -> bool;
}

/// Every backend's `name`, for the stat that says which is in use.
pub const BACKENDS: [&str; 2] = ["host", "rust"];

/// The shared handle the handlers use.
#[derive(Clone)]
pub struct Backend(Arc<dyn Crypto>);

impl Backend {
    pub fn rust() -> Backend {
        Backend(Arc::new(RustCrypto))
    }

    pub fn host<F: Foreign + 'static>(foreign: F) -> Backend {
        Backend(Arc::new(HostCrypto::new(foreign)))
    }

    pub fn name(&self) -> &'static str {
        self.0.name()
    }

    pub fn reads_spki(&self) -> bool {
        self.0.reads_spki()
    }
}

impl Default for Backend {
    fn default() -> Backend {
        Backend::rust()
    }
}

impl fmt::Debug for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Backend({})", self.0.name())
    }
}

impl std::ops::Deref for Backend {
    type Target = dyn Crypto;
    fn deref(&self) -> &Self::Target {
        &*self.0
    }
}

/// jwt-simple, in the module.
#[derive(Debug, Clone, Copy, Default)]
pub struct RustCrypto;

/// Large enough that no `exp`, `nbf` or `iat` fails jwt-simple's own time checks: ours ran
/// already, and this backend answers only for the signature. (A `u32` of seconds, because
/// jwt-simple's clock is 32.32 fixed point.)
const NO_CLOCK_S: u64 = u32::MAX as u64;

impl Crypto for RustCrypto {
    fn name(&self) -> &'static str {
        "rust"
    }

    fn reads_spki(&self) -> bool {
        false
    }

    fn verify(&self, alg: &str, key: &Jwk, signing_input: &str, signature: &[u8]) -> Verdict {
        // jwt-simple checks tokens, not signatures: the token is put back together and every
        // check but the signature's made to pass.
        let mut token =
            String::with_capacity(signing_input.len() + 1 + signature.len() * 4 / 3 + 4);
        token.push_str(signing_input);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(signature, &mut token);
        let options = VerificationOptions {
            artificial_time: Some(UnixTimeStamp::from_secs(NO_CLOCK_S)),
            time_tolerance: Some(Duration::from_secs(NO_CLOCK_S)),
            accept_future: true,
            required_signature_type: header_typ(signing_input),
            max_token_length: Some(usize::MAX),
            max_header_length: Some(usize::MAX),
            ..Default::default()
        };
        let checked = rust_verify(alg, key, &token, Some(options));
        match checked {
            Ok(()) => Verdict::Valid,
            Err(e) => match e.downcast_ref::<JWTError>() {
                Some(JWTError::InvalidSignature | JWTError::InvalidAuthenticationTag) => {
                    Verdict::Invalid
                }
                _ => Verdict::Error(e.to_string()),
            },
        }
    }

    fn sign(&self, _: &str, _: &[u8], _: &str) -> Option<Vec<u8>> {
        None
    }
}

/// The header's `typ`, which jwt-simple wants named to accept any.
fn header_typ(signing_input: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Typ {
        typ: Option<String>,
    }
    let header = signing_input.split('.').next()?;
    let bytes = URL_SAFE_NO_PAD.decode(header).ok()?;
    serde_json::from_slice::<Typ>(&bytes).ok()?.typ
}

fn rust_verify(
    alg: &str,
    key: &Jwk,
    token: &str,
    o: Option<VerificationOptions>,
) -> Result<(), jwt_simple::Error> {
    // Each algorithm's jwt-simple code in a function of its own (`apart`), not all twelve
    // inlined into this one: V8 compiles a function at a time, and its memory for one is kept
    // by Envoy's allocator after, so the largest function sets what the module costs in RSS.
    macro_rules! with {
        ($key:ty, $from:expr) => {
            super::apart(|| {
                $from
                    .and_then(|k: $key| k.verify_token::<NoCustomClaims>(token, o))
                    .map(drop)
            })
        };
    }
    match (&key.material, alg) {
        (Material::Rsa { n, e }, "RS256") => {
            with!(RS256PublicKey, RS256PublicKey::from_components(n, e))
        }
        (Material::Rsa { n, e }, "RS384") => {
            with!(RS384PublicKey, RS384PublicKey::from_components(n, e))
        }
        (Material::Rsa { n, e }, "RS512") => {
            with!(RS512PublicKey, RS512PublicKey::from_components(n, e))
        }
        (Material::Rsa { n, e }, "PS256") => {
            with!(PS256PublicKey, PS256PublicKey::from_components(n, e))
        }
        (Material::Rsa { n, e }, "PS384") => {
            with!(PS384PublicKey, PS384PublicKey::from_components(n, e))
        }
        (Material::Rsa { n, e }, "PS512") => {
            with!(PS512PublicKey, PS512PublicKey::from_components(n, e))
        }
        (Material::P256(p), "ES256") => with!(ES256PublicKey, ES256PublicKey::from_bytes(p)),
        (Material::P384(p), "ES384") => with!(ES384PublicKey, ES384PublicKey::from_bytes(p)),
        (Material::Ed25519(x), "EdDSA") => with!(Ed25519PublicKey, Ed25519PublicKey::from_bytes(x)),
        (Material::Oct(k), "HS256") => with!(HS256Key, Ok(HS256Key::from_bytes(k))),
        (Material::Oct(k), "HS384") => with!(HS384Key, Ok(HS384Key::from_bytes(k))),
        (Material::Oct(k), "HS512") => with!(HS512Key, Ok(HS512Key::from_bytes(k))),
        _ => Err(JWTError::AlgorithmMismatch.into()),
    }
}

/// What the host needs to be told for an algorithm it verifies: the hash, and for ECDSA the
/// width of `r` and `s`.
fn host_alg(alg: &str) -> Option<(&'static str, Option<usize>)> {
    Some(match alg {
        "RS256" => ("sha256", None),
        "RS384" => ("sha384", None),
        "RS512" => ("sha512", None),
        "ES256" => ("sha256", Some(32)),
        "ES384" => ("sha384", Some(48)),
        _ => return None,
    })
}

/// Whether the key's type is the one `alg` needs (the host would verify an RSA signature with
/// any RSA key and hash, so this is checked before it is asked).
fn key_fits(alg: &str, key: &Jwk) -> bool {
    matches!(
        (&key.material, alg),
        (Material::Rsa { .. }, "RS256" | "RS384" | "RS512")
            | (Material::P256(_), "ES256")
            | (Material::P384(_), "ES384")
    )
}

/// The host's foreign functions, with the Rust backend for what they do not cover.
pub struct HostCrypto<F> {
    foreign: F,
}

impl<F: Foreign> HostCrypto<F> {
    pub fn new(foreign: F) -> HostCrypto<F> {
        HostCrypto { foreign }
    }

    /// Asks the host alone: `Ok(true)` or `Ok(false)` only for a well-formed answer. A
    /// signature of the wrong length for ECDSA is `Ok(false)` without asking.
    pub fn verify_on_host(
        &self,
        alg: &str,
        spki: &[u8],
        signing_input: &[u8],
        signature: &[u8],
    ) -> Result<bool, HostError> {
        let (hash, width) = host_alg(alg).ok_or(HostError::Refused(format!("alg {alg}")))?;
        let der;
        let signature = match width {
            Some(w) => match der::ecdsa_jws_to_der(signature, w) {
                Some(d) => {
                    der = d;
                    &der[..]
                }
                None => return Ok(false),
            },
            None => signature,
        };
        let args = proto::verify_arguments(hash, spki, signature, signing_input);
        let answer = self.foreign.call("verify_signature", &args)?;
        let result = VerifyResult::decode(&answer).map_err(HostError::Malformed)?;
        Ok(result.result)
    }

    /// Asks the host to sign: the JWS signature (`r || s` for ECDSA).
    pub fn sign_on_host(
        &self,
        alg: &str,
        pkcs8: &[u8],
        signing_input: &[u8],
    ) -> Result<Vec<u8>, HostError> {
        let (hash, width) = host_alg(alg).ok_or(HostError::Refused(format!("alg {alg}")))?;
        let args = proto::sign_arguments(hash, pkcs8, signing_input);
        let answer = self.foreign.call("sign", &args)?;
        let result = SignResult::decode(&answer).map_err(HostError::Malformed)?;
        if !result.result || result.signature.is_empty() {
            return Err(HostError::Refused(result.error));
        }
        match width {
            Some(w) => der::ecdsa_der_to_jws(&result.signature, w)
                .ok_or_else(|| HostError::Refused("not a DER ECDSA signature".into())),
            None => Ok(result.signature),
        }
    }
}

impl<F: Foreign> Crypto for HostCrypto<F> {
    fn name(&self) -> &'static str {
        "host"
    }

    fn reads_spki(&self) -> bool {
        true
    }

    fn verify(&self, alg: &str, key: &Jwk, signing_input: &str, signature: &[u8]) -> Verdict {
        if let (Some(spki), true) = (key.spki.as_deref(), key_fits(alg, key)) {
            match self.verify_on_host(alg, spki, signing_input.as_bytes(), signature) {
                Ok(true) => return Verdict::Valid,
                Ok(false) => return Verdict::Invalid,
                // No answer is no verdict: Rust gives it.
                Err(_) => {}
            }
        }
        RustCrypto.verify(alg, key, signing_input, signature)
    }

    fn sign(&self, alg: &str, pkcs8: &[u8], signing_input: &str) -> Option<Vec<u8>> {
        self.sign_on_host(alg, pkcs8, signing_input.as_bytes()).ok()
    }
}

/// Why the host backend was not chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeError {
    /// The call failed for the known-good signature of this algorithm.
    Call(&'static str, HostError),
    /// The host said the known-good signature is not valid.
    RejectedGood(&'static str),
    /// The host said the altered message's signature is valid.
    AcceptedForgery(&'static str),
}

impl ProbeError {
    /// Whether the host simply lacks the function (another proxy, an older Envoy).
    pub fn is_not_found(&self) -> bool {
        matches!(self, ProbeError::Call(_, HostError::NotFound))
    }
}

impl fmt::Display for ProbeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProbeError::Call(alg, e) => write!(f, "{alg} known-answer probe: {e}"),
            ProbeError::RejectedGood(alg) => {
                write!(f, "{alg} known-answer probe: a good signature was refused")
            }
            ProbeError::AcceptedForgery(alg) => {
                write!(
                    f,
                    "{alg} known-answer probe: a forged signature was accepted"
                )
            }
        }
    }
}

/// The known answers: a key (DER SPKI), a message and its JWS signature, per algorithm family.
mod known {
    pub const MESSAGE: &[u8] = b"portcullis crypto probe";
    pub const RSA_SPKI: &[u8] = include_bytes!("probe/rsa.spki.der");
    pub const RSA_SIG: &[u8] = include_bytes!("probe/rsa.sig");
    pub const P256_SPKI: &[u8] = include_bytes!("probe/p256.spki.der");
    pub const P256_SIG: &[u8] = include_bytes!("probe/p256.sig");
}

/// Asks `foreign` the known-answer questions: a good RS256 and ES256 signature must verify,
/// and the same signatures over another message must not.
pub fn probe<F: Foreign>(host: &HostCrypto<F>) -> Result<(), ProbeError> {
    let forged: Vec<u8> = [known::MESSAGE, b"!"].concat();
    for (alg, spki, sig) in [
        ("RS256", known::RSA_SPKI, known::RSA_SIG),
        ("ES256", known::P256_SPKI, known::P256_SIG),
    ] {
        match host.verify_on_host(alg, spki, known::MESSAGE, sig) {
            Ok(true) => {}
            Ok(false) => return Err(ProbeError::RejectedGood(alg)),
            Err(e) => return Err(ProbeError::Call(alg, e)),
        }
        match host.verify_on_host(alg, spki, &forged, sig) {
            Ok(false) => {}
            Ok(true) => return Err(ProbeError::AcceptedForgery(alg)),
            Err(e) => return Err(ProbeError::Call(alg, e)),
        }
    }
    Ok(())
}

/// The backend for a host with these foreign functions: the host's when it passes the probe,
/// else Rust, with the reason.
pub fn select<F: Foreign + 'static>(foreign: F) -> (Backend, Option<ProbeError>) {
    let host = HostCrypto::new(foreign);
    match probe(&host) {
        Ok(()) => (Backend(Arc::new(host)), None),
        Err(e) => (Backend::rust(), Some(e)),
    }
}
