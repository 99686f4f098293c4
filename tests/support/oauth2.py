#!/usr/bin/env python3
"""An OAuth 2.0 server and policy service stand-in for tests, on one port:

- POST /oauth2/token: the client-credentials grant (RFC 6749 4.4) with HTTP Basic client
  authentication; clients client-1:s3cret and portcullis:pc-secret; else 401 invalid_client.
- POST /oauth2/introspect: RFC 7662; requires a Bearer token this server issued to portcullis
  (pre_authorization); tokens opaque-alice (active, scope "read write") and opaque-revoked
  (inactive); anything else is inactive.
- POST /policy: a `remote` authorizer: 403 when the body mentions "malware", else 200 with
  X-Policy: scanned.

Test controls: GET /__calls (path, headers, body of every call), POST /__reset.
Usage: oauth2.py [PORT]   (port 0 picks one; the chosen port is printed). Binds to 127.0.0.1 only.
"""

import base64
import itertools
import sys
import threading
import time
import urllib.parse

import loopback

CLIENTS = {"client-1": "s3cret", "portcullis": "pc-secret"}
TOKENS = {"opaque-alice": {"active": True, "sub": "alice", "scope": "read write", "client_id": "web"},
          "opaque-revoked": {"active": False}}
ISSUED = {}
CALLS = []
LOCK = threading.Lock()
SERIAL = itertools.count(1)


class Handler(loopback.Handler):

    def do_GET(self):
        if self.path == "/__calls":
            with LOCK:
                return self.reply(200, CALLS)
        self.reply(404, {"error": "not_found"})

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        path = self.path.split("?")[0]
        if path == "/__reset":
            with LOCK:
                CALLS.clear()
            return self.reply(200, {})
        with LOCK:
            CALLS.append({"path": path, "headers": {k.lower(): v for k, v in self.headers.items()},
                          "body": body.decode("utf-8", "replace")})
        form = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
        if path == "/oauth2/token":
            return self.token(form)
        if path == "/oauth2/introspect":
            return self.introspect(form)
        if path == "/policy":
            if b"malware" in body:
                return self.reply(403, {"allowed": False})
            return self.reply(200, {"allowed": True}, headers={"X-Policy": "scanned"})
        self.reply(404, {"error": "not_found"})

    def token(self, form):
        auth = self.headers.get("Authorization", "")
        try:
            user, _, secret = base64.b64decode(auth.removeprefix("Basic ")).decode().partition(":")
            user, secret = urllib.parse.unquote_plus(user), urllib.parse.unquote_plus(secret)
        except ValueError:
            user, secret = "", ""
        if form.get("grant_type") != ["client_credentials"] or CLIENTS.get(user) != secret:
            return self.reply(401, {"error": "invalid_client"})
        token = f"at-{next(SERIAL)}"
        with LOCK:
            ISSUED[token] = user
        self.reply(200, {"access_token": token, "token_type": "bearer", "expires_in": 3600,
                         "scope": " ".join(form.get("scope", [""]))})

    def introspect(self, form):
        bearer = self.headers.get("Authorization", "").removeprefix("Bearer ")
        with LOCK:
            if ISSUED.get(bearer) != "portcullis":
                return self.reply(401, {"error": "invalid_token"})
        answer = dict(TOKENS.get(form.get("token", [""])[0], {"active": False}))
        if answer.get("active"):
            answer["exp"] = int(time.time()) + 600
        self.reply(200, answer)


if __name__ == "__main__":
    loopback.serve(Handler, int(sys.argv[1]) if len(sys.argv) > 1 else 0)
