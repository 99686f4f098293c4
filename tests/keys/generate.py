"""Generates the TEST-ONLY signing keys in this directory and the public JWKS documents the
JWKS stand-in serves. Run once by hand (python3 generate.py); the output is committed so that
tests are reproducible. These keys protect nothing: never use them outside tests."""

import base64
import json
import pathlib

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

HERE = pathlib.Path(__file__).parent


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def uint(n: int) -> str:
    return b64(n.to_bytes((n.bit_length() + 7) // 8, "big"))


def pem(key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def main() -> None:
    keys = {
        "rsa-1": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "rsa-2": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "ec256-1": ec.generate_private_key(ec.SECP256R1()),
        "ec384-1": ec.generate_private_key(ec.SECP384R1()),
        "ed25519-1": ed25519.Ed25519PrivateKey.generate(),
    }
    jwks = []
    for kid, key in keys.items():
        (HERE / f"{kid}.pem").write_bytes(pem(key))
        pub = key.public_key()
        if kid.startswith("rsa"):
            n = pub.public_numbers()
            jwk = {"kty": "RSA", "n": uint(n.n), "e": uint(n.e)}
        elif kid.startswith("ec"):
            n = pub.public_numbers()
            size = 32 if kid.startswith("ec256") else 48
            crv = "P-256" if size == 32 else "P-384"
            jwk = {
                "kty": "EC",
                "crv": crv,
                "x": b64(n.x.to_bytes(size, "big")),
                "y": b64(n.y.to_bytes(size, "big")),
            }
        else:
            raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            jwk = {"kty": "OKP", "crv": "Ed25519", "x": b64(raw)}
        jwks.append({"kid": kid, "use": "sig", **jwk})
    secret = b"portcullis-test-hmac-secret-0123456789abcdef"
    (HERE / "hmac-1.secret").write_bytes(secret)
    jwks.append({"kid": "hmac-1", "use": "sig", "kty": "oct", "k": b64(secret)})
    # An encryption key with a signing key's kid: never a candidate for verification.
    enc = dict(jwks[0], use="enc", kid="enc-1")
    full = {"keys": jwks + [enc]}
    (HERE / "jwks.json").write_text(json.dumps(full, indent=1) + "\n")
    # Rotation: rsa-1 removed, rsa-2 kept.
    rotated = {"keys": [k for k in jwks if k["kid"] != "rsa-1"]}
    (HERE / "jwks-rotated.json").write_text(json.dumps(rotated, indent=1) + "\n")
    signing_sets()


def signing_sets() -> None:
    """Private JWKS documents for the id_token mutator, from the PEM keys above: one per
    algorithm, its private key first."""
    load = lambda kid: serialization.load_pem_private_key((HERE / f"{kid}.pem").read_bytes(), None)
    ec256, ed, rsa1 = load("ec256-1"), load("ed25519-1"), load("rsa-1")
    n = ec256.private_numbers()
    es256 = {
        "kid": "ec256-1", "use": "sig", "kty": "EC", "crv": "P-256", "alg": "ES256",
        "x": b64(n.public_numbers.x.to_bytes(32, "big")),
        "y": b64(n.public_numbers.y.to_bytes(32, "big")),
        "d": b64(n.private_value.to_bytes(32, "big")),
    }
    raw = lambda k, enc, fmt: k.private_bytes(enc, fmt, serialization.NoEncryption())
    eddsa = {
        "kid": "ed25519-1", "use": "sig", "kty": "OKP", "crv": "Ed25519",
        "x": b64(ed.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)),
        "d": b64(raw(ed, serialization.Encoding.Raw, serialization.PrivateFormat.Raw)),
    }
    r = rsa1.private_numbers()
    rs256 = {
        "kid": "rsa-1", "use": "sig", "kty": "RSA", "alg": "RS256",
        "n": uint(r.public_numbers.n), "e": uint(r.public_numbers.e), "d": uint(r.d),
        "p": uint(r.p), "q": uint(r.q), "dp": uint(r.dmp1), "dq": uint(r.dmq1), "qi": uint(r.iqmp),
    }
    for name, key in (("es256", es256), ("eddsa", eddsa), ("rs256", rs256)):
        doc = {"keys": [key]}
        (HERE / f"signing-{name}.jwks.json").write_text(json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    import sys

    signing_sets() if "--signing-only" in sys.argv[1:] else main()
