#!/usr/bin/env python3
"""A JWKS endpoint for tests, the demo and the benchmarks, standing in for an IdP's discovery
keys (such as Azure AD's https://login.microsoftonline.com/<tenant>/discovery/v2.0/keys).

Every GET serves the current key set, a file from tests/keys (TEST KEYS ONLY).

Test controls (JSON over HTTP on the same port):
  GET  /__calls     how many key-set fetches were served: {"count": N, "paths": [...]}
  POST /__reset     forget the calls; serve jwks.json normally again
  POST /__control   {"file": "jwks-rotated.json", "mode": M, "latency_ms": N, "hang_ms": N,
                     "flap_ms": N, "rotate_to": "jwks-rotated.json", "rotate_ms": N}
                    M: "normal", "down" (503), "garbage" (200 HTML), or a fault of faults.py:
                    "reset", "hang", "garbage-http", "huge", "flap". With `rotate_ms` the key set
                    served alternates between `file` and `rotate_to` every `rotate_ms`.

Usage: jwks.py [PORT]   (port 0 picks one; the chosen port is printed). Binds to 127.0.0.1 only.
"""

import json
import pathlib
import sys
import threading
import time

import faults
import loopback

KEYS = pathlib.Path(__file__).resolve().parents[1] / "keys"
DEFAULTS = {"file": "jwks.json", "mode": "normal", "latency_ms": 0, "hang_ms": 3000, "flap_ms": 1000,
            "rotate_to": None, "rotate_ms": 0}
STATE = dict(DEFAULTS, paths=[])
LOCK = threading.Lock()


class Handler(loopback.Handler):
    def do_GET(self):
        if self.path == "/__calls":
            with LOCK:
                body = {"count": len(STATE["paths"]), "paths": list(STATE["paths"])}
            return self.reply(200, body)
        with LOCK:
            STATE["paths"].append(self.path)
            file, mode, latency = STATE["file"], STATE["mode"], STATE["latency_ms"]
            hang_ms, flap_ms = STATE["hang_ms"], STATE["flap_ms"]
            if STATE["rotate_to"] and STATE["rotate_ms"] and faults.flapping_down(STATE["rotate_ms"]):
                file = STATE["rotate_to"]
        if faults.act(self, mode, hang_ms, flap_ms):
            return
        if latency:
            time.sleep(latency / 1000)
        if mode == "down":
            return self.reply(503, {"error": "unavailable"})
        if mode == "garbage":
            return self.reply(200, b"<html>this is not a key set</html>", content_type="text/html")
        return self.reply(200, (KEYS / file).read_bytes())

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        with LOCK:
            if self.path == "/__reset":
                STATE.update(DEFAULTS, paths=[])
            elif self.path == "/__control":
                STATE.update({k: v for k, v in body.items() if k in DEFAULTS})
            else:
                return self.reply(404, {})
        self.reply(200, {})


if __name__ == "__main__":
    loopback.serve(Handler, int(sys.argv[1]) if len(sys.argv) > 1 else 0)
