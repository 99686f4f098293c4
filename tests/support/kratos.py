#!/usr/bin/env python3
"""A Kratos-compatible session store for tests and the demo: GET /sessions/whoami.

In production `check_session_url` points at Ory Kratos itself; this stand-in implements the
same contract (shared/reference/kratos-whoami.openapi.json) so tests run without it.

Sessions are found, as Kratos finds them, in the `ory_kratos_session` cookie, in
`X-Session-Token`, or in `Authorization: Bearer`. The token decides the answer:

  valid-<name>   200, an active aal1 session for the identity <name>
  aal1-<name>    403 session_aal2_required
  ratelimit      429 with Retry-After and X-Ratelimit-* headers
  anything else  401 session_inactive (no session: 401 too)

Test controls (JSON over HTTP on the same port):
  GET  /__calls     every whoami call received: method, path, headers
  POST /__reset     forget the calls
  POST /__control   {"latency_ms": N, "mode": M, "hang_ms": N, "flap_ms": N}
                    M: "normal", "ratelimit", "down" (closed without an answer), "garbage" (200
                    that is not JSON), or a fault of faults.py: "reset", "hang", "garbage-http",
                    "huge", "flap"

Usage: kratos.py [PORT] [--latency-ms N]   (port 0 picks one; the chosen port is printed)
Binds to 127.0.0.1 only.
"""

import json
import sys
import threading
import time
import uuid

import faults
import loopback

STATE = {"latency_ms": 0, "mode": "normal", "hang_ms": 3000, "flap_ms": 1000, "calls": []}
CONTROLS = ("latency_ms", "mode", "hang_ms", "flap_ms")
LOCK = threading.Lock()
FAR_FUTURE = "2099-01-01T00:00:00Z"
NOW = "2024-01-01T00:00:00Z"


def session_body(name):
    """A session shaped like Kratos' own fixtures (shared/reference/kratos-sessions/)."""
    identity_id = str(uuid.uuid5(uuid.NAMESPACE_URL, "identity/" + name))
    return {
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, "session/" + name)),
        "active": True,
        "expires_at": FAR_FUTURE,
        "authenticated_at": NOW,
        "authenticator_assurance_level": "aal1",
        "authentication_methods": [{"method": "password", "aal": "aal1", "completed_at": NOW}],
        "issued_at": NOW,
        "identity": {
            "id": identity_id,
            "schema_id": "default",
            "schema_url": "http://127.0.0.1/schemas/default",
            "state": "active",
            "traits": {"email": name + "@example.com", "name": {"first": name}},
            "verifiable_addresses": [],
            "metadata_public": None,
            "created_at": NOW,
            "updated_at": NOW,
        },
        "devices": [],
    }


def error_body(code, status, error_id, reason, message):
    return {"error": {"id": error_id, "code": code, "status": status, "reason": reason, "message": message}}


def token_of(headers):
    for part in headers.get_all("Cookie") or []:
        for pair in part.split(";"):
            name, _, value = pair.strip().partition("=")
            if name == "ory_kratos_session" and value:
                return value
    if headers.get("X-Session-Token"):
        return headers["X-Session-Token"]
    auth = headers.get("Authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:]
    return None


def whoami(token):
    """(status, extra headers, body) for a token."""
    if STATE["mode"] == "ratelimit" or token == "ratelimit":
        headers = {"Retry-After": "7", "X-Ratelimit-Limit": "100", "X-Ratelimit-Remaining": "0",
                   "X-Ratelimit-Reset": "7"}
        return 429, headers, error_body(429, "Too Many Requests", "", "", "Too many requests")
    if token and token.startswith("valid-"):
        return 200, {}, session_body(token[len("valid-"):])
    if token and token.startswith("aal1-"):
        return 403, {}, error_body(403, "Forbidden", "session_aal2_required",
                                   "An active session was found but it does not fulfil the Authenticator Assurance Level, implying that the session must use 2FA with a Authenticator Assurance Level 2.",
                                   "Session does not fulfil the required AAL")
    return 401, {}, error_body(401, "Unauthorized", "session_inactive",
                               "No active session was found in this request.",
                               "request does not have a valid authentication session")


class Handler(loopback.Handler):

    def do_GET(self):
        if self.path == "/__calls":
            with LOCK:
                return self.reply(200, STATE["calls"])
        path = self.path.split("?", 1)[0]
        if path != "/sessions/whoami":
            return self.reply(404, error_body(404, "Not Found", "", "", "The requested resource could not be found"))
        with LOCK:
            STATE["calls"].append({
                "method": self.command,
                "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
            })
            latency, mode = STATE["latency_ms"], STATE["mode"]
            hang_ms, flap_ms = STATE["hang_ms"], STATE["flap_ms"]
        if mode == "down":
            self.close_connection = True
            self.connection.close()
            return
        if faults.act(self, mode, hang_ms, flap_ms):
            return
        if mode == "garbage":
            return self.reply(200, b"<html>not a session</html>", content_type="text/html")
        if latency:
            time.sleep(latency / 1000.0)
        status, headers, body = whoami(token_of(self.headers))
        self.reply(status, body, headers)

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        payload = json.loads(self.rfile.read(length) or b"{}")
        with LOCK:
            if self.path == "/__reset":
                STATE["calls"].clear()
            elif self.path == "/__control":
                for key in CONTROLS:
                    if key in payload:
                        STATE[key] = payload[key]
            else:
                return self.reply(404, {})
        self.reply(200, {"ok": True})


def main():
    args = sys.argv[1:]
    port = int(args[0]) if args and not args[0].startswith("--") else 0
    if "--latency-ms" in args:
        STATE["latency_ms"] = int(args[args.index("--latency-ms") + 1])
    loopback.serve(Handler, port)


if __name__ == "__main__":
    main()
