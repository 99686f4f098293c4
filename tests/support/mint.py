"""Test JWTs for every algorithm, signed with the committed TEST keys in tests/keys (the Python
twin of tests/common/mint.rs, for the Envoy tier, the demo and the benchmarks)."""

import functools
import pathlib
import time

import jwt
from cryptography.hazmat.primitives.serialization import load_pem_private_key

KEYS = pathlib.Path(__file__).resolve().parents[1] / "keys"
TENANT = "11111111-2222-3333-4444-555555555555"
AZURE_AUDIENCE = "https://management.azure.com"
AZURE_ISSUER = f"https://sts.windows.net/{TENANT}/"


def default_key(alg):
    if alg[:2] in ("RS", "PS"):
        return "rsa-1"
    return {"ES256": "ec256-1", "ES384": "ec384-1", "EdDSA": "ed25519-1"}.get(alg, "hmac-1")


@functools.cache
def signing_key(name, hmac):
    """Loaded once: validating an RSA key on every load costs milliseconds."""
    if hmac:
        return (KEYS / f"{name}.secret").read_bytes()
    return load_pem_private_key((KEYS / f"{name}.pem").read_bytes(), password=None)


def mint(claims, alg="RS256", key=None, kid=None, tamper=False):
    key = key or default_key(alg)
    kid = key if kid is None else kid
    headers = {"kid": kid} if kid else {}
    token = jwt.encode(claims, signing_key(key, alg.startswith("HS")), algorithm=alg, headers=headers)
    if tamper:
        head, sig = token.rsplit(".", 1)
        token = head + "." + sig[:2] + ("B" if sig[2] == "A" else "A") + sig[3:]
    return token


def azure_mi(sub="9f1c1a6e-managed-identity", lifetime=3600, now=None, **extra):
    """Claims shaped like an Azure VM managed-identity token for Azure Resource Manager."""
    now = int(now or time.time())
    claims = {"aud": AZURE_AUDIENCE, "iss": AZURE_ISSUER, "sub": sub, "oid": sub, "tid": TENANT,
              "appid": "app-" + sub[:8], "idtyp": "app", "iat": now - 5, "nbf": now - 5,
              "exp": now + lifetime}
    claims.update(extra)
    return claims
