#!/usr/bin/env python3
"""An Ory Keto stand-in for tests: POST /relation-tuples/check answers {"allowed": true} with 200
when the tuple is known, {"allowed": false} with 403 otherwise — Keto's check API contract.

Known tuples (namespace:object#relation@subject_id): files:report-1#view@user:alice.

Test controls: GET /__calls (every check received: headers and JSON body), POST /__reset.
Usage: keto.py [PORT]   (port 0 picks one; the chosen port is printed). Binds to 127.0.0.1 only.
"""

import json
import sys
import threading

import loopback

TUPLES = {("files", "report-1", "view", "user:alice")}
CALLS = []
LOCK = threading.Lock()


class Handler(loopback.Handler):

    def do_GET(self):
        if self.path == "/__calls":
            with LOCK:
                return self.reply(200, CALLS)
        self.reply(404, {"error": {"code": 404}})

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path == "/__reset":
            with LOCK:
                CALLS.clear()
            return self.reply(200, {})
        if self.path.split("?")[0] != "/relation-tuples/check":
            return self.reply(404, {"error": {"code": 404}})
        try:
            check = json.loads(body)
        except ValueError:
            return self.reply(400, {"error": {"code": 400, "message": "invalid JSON"}})
        with LOCK:
            CALLS.append({"headers": {k.lower(): v for k, v in self.headers.items()}, "body": check})
        key = (check.get("namespace"), check.get("object"), check.get("relation"), check.get("subject_id"))
        allowed = key in TUPLES
        self.reply(200 if allowed else 403, {"allowed": allowed})


if __name__ == "__main__":
    loopback.serve(Handler, int(sys.argv[1]) if len(sys.argv) > 1 else 0)
