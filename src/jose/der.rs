//! The little DER that handing signatures to a host needs: JWS's fixed-width ECDSA `r || s`
//! (RFC 7518 §3.4) converted to and from X.690 DER `ECDSA-Sig-Value`, and keys written as
//! SubjectPublicKeyInfo (RFC 5480, RFC 3279) and PKCS#8 (RFC 5208, RFC 8017, RFC 5915).
//! Hand-written (jwt-simple's DER writers cost the module ~100 KB) and strict when reading:
//! every INTEGER minimal and positive, every length definite and minimal, nothing after the end.

/// `ECDSA-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER }` from a JWS `r || s` of `2 * width`
/// bytes. `None` when the length is not exactly that.
pub fn ecdsa_jws_to_der(sig: &[u8], width: usize) -> Option<Vec<u8>> {
    if width == 0 || sig.len() != 2 * width {
        return None;
    }
    let (r, s) = sig.split_at(width);
    let mut body = Vec::with_capacity(2 * width + 8);
    integer(&mut body, r);
    integer(&mut body, s);
    let mut out = Vec::with_capacity(body.len() + 4);
    tlv(&mut out, 0x30, &body);
    Some(out)
}

/// The JWS `r || s` (each left-padded to `width`) of a DER `ECDSA-Sig-Value`. `None` for
/// anything but a strict DER SEQUENCE of two positive minimal INTEGERs that fit in `width`.
pub fn ecdsa_der_to_jws(der: &[u8], width: usize) -> Option<Vec<u8>> {
    let (body, rest) = read_tlv(der, 0x30)?;
    if !rest.is_empty() {
        return None;
    }
    let (r, body) = read_uint(body)?;
    let (s, body) = read_uint(body)?;
    if !body.is_empty() || r.len() > width || s.len() > width {
        return None;
    }
    let mut out = vec![0u8; 2 * width];
    out.get_mut(width - r.len()..width)?.copy_from_slice(r);
    out.get_mut(2 * width - s.len()..)?.copy_from_slice(s);
    Some(out)
}

/// `rsaEncryption` (1.2.840.113549.1.1.1) with its NULL parameters.
const RSA_ALGORITHM: &[u8] = &[
    0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
];
/// `id-ecPublicKey` (1.2.840.10045.2.1).
const EC_PUBLIC_KEY: &[u8] = &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];

/// The named curves a host verifies with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Curve {
    P256,
    P384,
}

impl Curve {
    fn oid(self) -> &'static [u8] {
        match self {
            // prime256v1 (1.2.840.10045.3.1.7)
            Curve::P256 => &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07],
            // secp384r1 (1.3.132.0.34)
            Curve::P384 => &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22],
        }
    }

    fn algorithm(self) -> Vec<u8> {
        let mut out = Vec::with_capacity(24);
        tlv(&mut out, 0x30, &[EC_PUBLIC_KEY, self.oid()].concat());
        out
    }
}

/// `SubjectPublicKeyInfo` of an RSA key: `RSAPublicKey { n, e }` in a BIT STRING.
pub fn spki_rsa(n: &[u8], e: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(n.len() + e.len() + 12);
    integer(&mut key, n);
    integer(&mut key, e);
    spki(RSA_ALGORITHM, &sequence(&key))
}

/// `SubjectPublicKeyInfo` of an EC key: the SEC1 point (`04 || x || y`) in a BIT STRING.
pub fn spki_ec(curve: Curve, point: &[u8]) -> Vec<u8> {
    spki(&curve.algorithm(), point)
}

fn spki(algorithm: &[u8], key: &[u8]) -> Vec<u8> {
    let mut bits = Vec::with_capacity(key.len() + 1);
    bits.push(0); // no unused bits
    bits.extend_from_slice(key);
    let mut body = algorithm.to_vec();
    tlv(&mut body, 0x03, &bits);
    sequence(&body)
}

/// PKCS#8 `PrivateKeyInfo` of an RSA key: `RSAPrivateKey` (version 0, then n, e, d, p, q,
/// dp, dq, qi as big-endian unsigned integers) in an OCTET STRING.
pub fn pkcs8_rsa(parts: [&[u8]; 8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(parts.iter().map(|p| p.len() + 5).sum::<usize>() + 3);
    integer(&mut key, &[]);
    for p in parts {
        integer(&mut key, p);
    }
    pkcs8(RSA_ALGORITHM, &sequence(&key))
}

/// PKCS#8 `PrivateKeyInfo` of an EC key: `ECPrivateKey { 1, d, [1] public point }` (the
/// curve is named once, in the algorithm).
pub fn pkcs8_ec(curve: Curve, d: &[u8], point: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(d.len() + point.len() + 16);
    integer(&mut key, &[1]);
    tlv(&mut key, 0x04, d);
    let mut bits = Vec::with_capacity(point.len() + 4);
    tlv(&mut bits, 0x03, &[&[0u8][..], point].concat());
    tlv(&mut key, 0xa1, &bits);
    pkcs8(&curve.algorithm(), &sequence(&key))
}

fn pkcs8(algorithm: &[u8], key: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(key.len() + algorithm.len() + 8);
    integer(&mut body, &[]);
    body.extend_from_slice(algorithm);
    tlv(&mut body, 0x04, key);
    sequence(&body)
}

fn sequence(content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 4);
    tlv(&mut out, 0x30, content);
    out
}

/// Appends a minimal positive INTEGER of the big-endian unsigned `value`.
fn integer(out: &mut Vec<u8>, value: &[u8]) {
    let start = value.iter().position(|&b| b != 0).unwrap_or(value.len());
    let digits = value.get(start..).unwrap_or_default();
    let mut content = Vec::with_capacity(digits.len() + 1);
    // Zero is one 0x00 byte; a high bit set would read as negative, so a 0x00 goes first.
    if digits.first().is_none_or(|&b| b & 0x80 != 0) {
        content.push(0);
    }
    content.extend_from_slice(digits);
    tlv(out, 0x02, &content);
}

fn tlv(out: &mut Vec<u8>, tag: u8, content: &[u8]) {
    out.push(tag);
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
        let digits = bytes.get(skip..).unwrap_or_default();
        out.push(0x80 | digits.len() as u8);
        out.extend_from_slice(digits);
    }
    out.extend_from_slice(content);
}

/// One TLV with `tag`: its content and what follows it.
fn read_tlv(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&t, rest) = input.split_first()?;
    if t != tag {
        return None;
    }
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        // Indefinite lengths and more than 4 length bytes are not DER for anything this size.
        if n == 0 || n > 4 {
            return None;
        }
        let digits = rest.get(..n)?;
        rest = rest.get(n..)?;
        if digits.first() == Some(&0) {
            return None;
        }
        let len = digits
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        // The long form only where the short one cannot say it.
        if len < 0x80 {
            return None;
        }
        len
    };
    let content = rest.get(..len)?;
    Some((content, rest.get(len..)?))
}

/// A positive, minimally encoded INTEGER: its magnitude without the sign byte.
fn read_uint(input: &[u8]) -> Option<(&[u8], &[u8])> {
    let (content, rest) = read_tlv(input, 0x02)?;
    match content {
        [] => None,
        [b, ..] if b & 0x80 != 0 => None,
        [0] => Some((&[][..], rest)),
        [0, b, ..] if b & 0x80 == 0 => None,
        [0, magnitude @ ..] => Some((magnitude, rest)),
        _ => Some((content, rest)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_positive_integers() {
        let mut sig = vec![0u8; 64];
        sig[0] = 0x80; // r: high bit set, so a 0x00 goes first
        sig[63] = 0x01; // s: 31 leading zero bytes, dropped
        sig[32..63].fill(0);
        let der = ecdsa_jws_to_der(&sig, 32).unwrap();
        assert_eq!(&der[..4], &[0x30, 0x26, 0x02, 0x21]);
        assert_eq!(der[4], 0x00);
        assert_eq!(&der[der.len() - 3..], &[0x02, 0x01, 0x01]);
        assert_eq!(ecdsa_der_to_jws(&der, 32).unwrap(), sig);
        // An all-zero r encodes as one zero byte.
        let zero = ecdsa_jws_to_der(&[0u8; 64], 32).unwrap();
        assert_eq!(zero, [0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00]);
        assert_eq!(ecdsa_der_to_jws(&zero, 32).unwrap(), vec![0u8; 64]);
    }

    #[test]
    fn p384_and_long_lengths() {
        let sig = vec![0xffu8; 96];
        let der = ecdsa_jws_to_der(&sig, 48).unwrap();
        assert_eq!(&der[..3], &[0x30, 0x66, 0x02]);
        assert_eq!(ecdsa_der_to_jws(&der, 48).unwrap(), sig);
        assert_eq!(ecdsa_der_to_jws(&der, 32), None, "r does not fit P-256");
        // P-521's widths need the long form.
        let sig = vec![0xffu8; 132];
        let der = ecdsa_jws_to_der(&sig, 66).unwrap();
        assert_eq!(&der[..3], &[0x30, 0x81, 0x8a]);
        assert_eq!(ecdsa_der_to_jws(&der, 66).unwrap(), sig);
    }

    #[test]
    fn refuses_what_is_not_strict_der() {
        assert_eq!(ecdsa_jws_to_der(&[1u8; 63], 32), None);
        assert_eq!(ecdsa_jws_to_der(&[1u8; 65], 32), None);
        for bad in [
            &[0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01, 0x00][..], // trailing byte
            &[0x30, 0x06, 0x02, 0x01, 0x81, 0x02, 0x01, 0x01],           // negative r
            &[0x30, 0x07, 0x02, 0x02, 0x00, 0x01, 0x02, 0x01, 0x01],     // non-minimal r
            &[0x30, 0x05, 0x02, 0x00, 0x02, 0x01, 0x01],                 // empty r
            &[0x30, 0x81, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01],     // long form, short length
            &[0x30, 0x80, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01, 0, 0],     // indefinite
            &[0x31, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01],           // a SET
            &[0x30, 0x07, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01],           // length past the end
            &[0x30, 0x03, 0x02, 0x01, 0x01],                             // one INTEGER
            &[],
        ] {
            assert_eq!(ecdsa_der_to_jws(bad, 32), None, "{bad:02x?}");
        }
    }
}
