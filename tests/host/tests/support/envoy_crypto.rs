//! Envoy's `verify_signature` and `sign` foreign functions (`Common::Crypto::Utility`, BoringSSL),
//! emulated with the RustCrypto crates for the tests: the same argument and result messages, DER
//! SubjectPublicKeyInfo and PKCS#8 keys, PKCS#1 v1.5 for RSA, DER `ECDSA-Sig-Value` for ECDSA,
//! `BadArgument` (status 2) for a key that does not parse and an error result for an unknown
//! hash. See `shared/reference/envoy-host-functions.md`.

use p256::ecdsa::signature::hazmat::{PrehashSigner, PrehashVerifier};
use p256::pkcs8::{DecodePrivateKey, DecodePublicKey};
use portcullis::jose::proto::{Arguments, SignResult, VerifyResult};
use rsa::pkcs8::{DecodePrivateKey as _, DecodePublicKey as _};
use rsa::{Pkcs1v15Sign, RsaPrivateKey, RsaPublicKey};
use sha2::Digest;

/// proxy-wasm's `BadArgument`.
pub const BAD_ARGUMENT: u32 = 2;

enum Hash {
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    fn parse(name: &[u8]) -> Option<Hash> {
        match name.to_ascii_lowercase().as_slice() {
            b"sha256" => Some(Hash::Sha256),
            b"sha384" => Some(Hash::Sha384),
            b"sha512" => Some(Hash::Sha512),
            _ => None,
        }
    }

    fn digest(&self, text: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha256 => sha2::Sha256::digest(text).to_vec(),
            Hash::Sha384 => sha2::Sha384::digest(text).to_vec(),
            Hash::Sha512 => sha2::Sha512::digest(text).to_vec(),
        }
    }

    fn pkcs1(&self) -> Pkcs1v15Sign {
        match self {
            Hash::Sha256 => Pkcs1v15Sign::new::<sha2::Sha256>(),
            Hash::Sha384 => Pkcs1v15Sign::new::<sha2::Sha384>(),
            Hash::Sha512 => Pkcs1v15Sign::new::<sha2::Sha512>(),
        }
    }
}

enum Public {
    Rsa(RsaPublicKey),
    P256(p256::ecdsa::VerifyingKey),
    P384(p384::ecdsa::VerifyingKey),
}

fn public_key(der: &[u8]) -> Option<Public> {
    if let Ok(k) = RsaPublicKey::from_public_key_der(der) {
        return Some(Public::Rsa(k));
    }
    if let Ok(k) = p256::ecdsa::VerifyingKey::from_public_key_der(der) {
        return Some(Public::P256(k));
    }
    p384::ecdsa::VerifyingKey::from_public_key_der(der)
        .ok()
        .map(Public::P384)
}

fn refused(error: &str) -> Vec<u8> {
    VerifyResult {
        result: false,
        error: error.into(),
    }
    .encode()
}

pub fn verify_signature(arguments: &[u8]) -> Result<Vec<u8>, u32> {
    let args = Arguments::decode(arguments).map_err(|_| BAD_ARGUMENT)?;
    let Some(hash) = Hash::parse(args.field(1)) else {
        return Ok(refused("unsupported hash function"));
    };
    let key = public_key(args.field(2)).ok_or(BAD_ARGUMENT)?;
    let (signature, text) = (args.field(3), args.field(4));
    let digest = hash.digest(text);
    let ok = match key {
        Public::Rsa(k) => k.verify(hash.pkcs1(), &digest, signature).is_ok(),
        Public::P256(k) => p256::ecdsa::Signature::from_der(signature)
            .is_ok_and(|s| k.verify_prehash(&digest, &s).is_ok()),
        Public::P384(k) => p384::ecdsa::Signature::from_der(signature)
            .is_ok_and(|s| k.verify_prehash(&digest, &s).is_ok()),
    };
    Ok(if ok {
        VerifyResult {
            result: true,
            error: String::new(),
        }
        .encode()
    } else {
        refused("Failed to verify digest. Error code 0: ")
    })
}

pub fn sign(arguments: &[u8]) -> Result<Vec<u8>, u32> {
    let args = Arguments::decode(arguments).map_err(|_| BAD_ARGUMENT)?;
    let Some(hash) = Hash::parse(args.field(1)) else {
        return Ok(SignResult {
            result: false,
            signature: vec![],
            error: "unsupported hash function".into(),
        }
        .encode());
    };
    let (der, text) = (args.field(2), args.field(3));
    let digest = hash.digest(text);
    let signature = if let Ok(k) = RsaPrivateKey::from_pkcs8_der(der) {
        k.sign(hash.pkcs1(), &digest).ok()
    } else if let Ok(k) = p256::ecdsa::SigningKey::from_pkcs8_der(der) {
        let s: Result<p256::ecdsa::Signature, _> = k.sign_prehash(&digest);
        s.ok().map(|s| s.to_der().as_bytes().to_vec())
    } else if let Ok(k) = p384::ecdsa::SigningKey::from_pkcs8_der(der) {
        let s: Result<p384::ecdsa::Signature, _> = k.sign_prehash(&digest);
        s.ok().map(|s| s.to_der().as_bytes().to_vec())
    } else {
        return Err(BAD_ARGUMENT);
    };
    Ok(match signature {
        Some(signature) => SignResult {
            result: true,
            signature,
            error: String::new(),
        },
        None => SignResult {
            result: false,
            signature: vec![],
            error: "signing failed".into(),
        },
    }
    .encode())
}
