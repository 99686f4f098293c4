//! Compact JWTs: splitting and decoding the header and claims without trusting them, and the
//! signature check, which is the only step that costs real time.

use super::jwk::{Jwk, Material};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jwt_simple::prelude::*;
use jwt_simple::JWTError;
use serde_json::{Map, Value};
use std::fmt;

/// Tokens longer than this are refused before decoding (Envoy's default header limit is 60 KiB).
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// A token whose header and claims have been decoded but not verified.
#[derive(Debug, Clone)]
pub struct Parsed {
    pub alg: String,
    pub kid: Option<String>,
    typ: Option<String>,
    pub claims: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenError {
    /// Not three dot-separated parts: some other kind of token, so not ours to judge.
    NotAJwt,
    TooLong,
    /// A part is not base64url JSON of the expected shape.
    Malformed(&'static str),
    MissingKid,
    /// The key named by `kid` cannot verify this algorithm.
    KeyMismatch,
    BadSignature,
    /// The verifier refused the token for another reason (its own message).
    Unverifiable(String),
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenError::NotAJwt => f.write_str("the token is not a JWT"),
            TokenError::TooLong => write!(f, "the token is longer than {MAX_TOKEN_BYTES} bytes"),
            TokenError::Malformed(part) => write!(f, "the token {part} is malformed"),
            TokenError::MissingKid => f.write_str("the token header has no kid"),
            TokenError::KeyMismatch => {
                f.write_str("The signing key algorithm does not match the algorithm of the token")
            }
            TokenError::BadSignature => f.write_str("the token signature is invalid"),
            TokenError::Unverifiable(m) => write!(f, "the token could not be verified: {m}"),
        }
    }
}

impl std::error::Error for TokenError {}

#[derive(Deserialize)]
struct Header {
    alg: String,
    kid: Option<String>,
    typ: Option<String>,
}

fn decode<T: serde::de::DeserializeOwned>(part: &str, what: &'static str) -> Result<T, TokenError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| TokenError::Malformed(what))?;
    serde_json::from_slice(&bytes).map_err(|_| TokenError::Malformed(what))
}

impl Parsed {
    pub fn parse(token: &str) -> Result<Parsed, TokenError> {
        let mut parts = token.split('.');
        let (Some(header), Some(claims), Some(_), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::NotAJwt);
        };
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::TooLong);
        }
        let header: Header = decode(header, "header")?;
        let claims: Map<String, Value> = decode(claims, "claims")?;
        Ok(Parsed {
            alg: header.alg,
            kid: header.kid,
            typ: header.typ,
            claims,
        })
    }

    /// Checks the signature of `token` (the text this was parsed from) with `key`. The claims
    /// have been checked already, at `now_s`; jwt-simple checks the time claims again with the
    /// same clock and leeway, so it is given ours.
    pub fn verify(
        &self,
        token: &str,
        key: &Jwk,
        now_s: u64,
        leeway_s: u64,
    ) -> Result<(), TokenError> {
        if !key.fits(&self.alg) {
            return Err(TokenError::KeyMismatch);
        }
        let options = VerificationOptions {
            artificial_time: Some(UnixTimeStamp::from_secs(now_s)),
            time_tolerance: Some(Duration::from_secs(leeway_s)),
            // `typ` is not ours to police (Oathkeeper ignores it); jwt-simple refuses unknown ones.
            required_signature_type: self.typ.clone(),
            max_token_length: Some(MAX_TOKEN_BYTES),
            ..Default::default()
        };
        let o = Some(options);
        let checked = match (&key.material, self.alg.as_str()) {
            (Material::Rsa { n, e }, alg) => rsa(alg, n, e, token, o),
            (Material::P256(p), _) => ES256PublicKey::from_bytes(p)
                .and_then(|k| k.verify_token::<NoCustomClaims>(token, o))
                .map(drop),
            (Material::P384(p), _) => ES384PublicKey::from_bytes(p)
                .and_then(|k| k.verify_token::<NoCustomClaims>(token, o))
                .map(drop),
            (Material::Ed25519(x), _) => Ed25519PublicKey::from_bytes(x)
                .and_then(|k| k.verify_token::<NoCustomClaims>(token, o))
                .map(drop),
            (Material::Oct(k), "HS256") => HS256Key::from_bytes(k)
                .verify_token::<NoCustomClaims>(token, o)
                .map(drop),
            (Material::Oct(k), "HS384") => HS384Key::from_bytes(k)
                .verify_token::<NoCustomClaims>(token, o)
                .map(drop),
            (Material::Oct(k), "HS512") => HS512Key::from_bytes(k)
                .verify_token::<NoCustomClaims>(token, o)
                .map(drop),
            _ => return Err(TokenError::KeyMismatch),
        };
        checked.map_err(|e| match e.downcast_ref::<JWTError>() {
            Some(JWTError::InvalidSignature | JWTError::InvalidAuthenticationTag) => {
                TokenError::BadSignature
            }
            _ => TokenError::Unverifiable(e.to_string()),
        })
    }
}

fn rsa(
    alg: &str,
    n: &[u8],
    e: &[u8],
    token: &str,
    o: Option<VerificationOptions>,
) -> Result<(), jwt_simple::Error> {
    macro_rules! with {
        ($key:ty) => {
            <$key>::from_components(n, e)
                .and_then(|k| k.verify_token::<NoCustomClaims>(token, o))
                .map(drop)
        };
    }
    match alg {
        "RS256" => with!(RS256PublicKey),
        "RS384" => with!(RS384PublicKey),
        "RS512" => with!(RS512PublicKey),
        "PS256" => with!(PS256PublicKey),
        "PS384" => with!(PS384PublicKey),
        "PS512" => with!(PS512PublicKey),
        _ => Err(jwt_simple::JWTError::AlgorithmMismatch.into()),
    }
}
