#!/usr/bin/env python3
"""A scripted dependency for the scenario tables in Envoy (tests/envoy/test_tables.py): one
listener per cluster a table names, answering the calls in the order a case scripts them and
recording what each call carried.

Control API, on the port printed on the first line (127.0.0.1 only):
  POST /__clusters {"names": [...]}   a listener per name not yet served; answers {name: port}
  POST /__script {"answers": [...], "background": {name: answer}}
        the answers for the next calls, whichever listener gets them, in order; clears the
        record. An answer is {status, headers: [[k, v]], body (text)} or {fail: true} (the
        connection is closed without an answer). A call that finds no answer left gets the
        listener's background answer (recorded apart: a JWKS fetch at start) or, without one,
        a 500 "unscripted".
  GET /__calls   {"calls": [{cluster, method, path, headers: [[k, v]], body}], "background": n}

Usage: scripted.py [PORT]   (0 picks a free port).
"""

import json
import sys
import threading
from http.server import ThreadingHTTPServer

import loopback

LOCK = threading.Lock()
STATE = {"answers": [], "background": {}, "calls": [], "served_background": 0}
LISTENERS = {}


def read_body(handler):
    length = int(handler.headers.get("Content-Length") or 0)
    return handler.rfile.read(length) if length else b""


class Cluster(loopback.Handler):
    """A call from the filter, through Envoy, to the cluster this listener stands in for."""
    cluster = ""

    def handle_any(self):
        body = read_body(self)
        call = {"cluster": self.cluster, "method": self.command, "path": self.path,
                "headers": [[k.lower(), v] for k, v in self.headers.items()],
                "body": body.decode("utf-8", "surrogateescape")}
        with LOCK:
            if STATE["answers"]:
                answer = STATE["answers"].pop(0)
                STATE["calls"].append(call)
            elif self.cluster in STATE["background"]:
                answer = STATE["background"][self.cluster]
                STATE["served_background"] += 1
            else:
                answer = {"status": 500, "body": "unscripted"}
                STATE["calls"].append(call)
        if answer.get("fail"):
            self.close_connection = True
            return
        data = answer.get("body", "").encode()
        self.send_response_only(answer.get("status", 200))
        for name, value in answer.get("headers", []):
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = handle_any


def listen(name):
    handler = type("Cluster_" + name, (Cluster,), {"cluster": name})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server.server_address[1]


class Control(loopback.Handler):
    def do_POST(self):
        request = json.loads(read_body(self) or b"{}")
        with LOCK:
            if self.path == "/__clusters":
                for name in request["names"]:
                    if name not in LISTENERS:
                        LISTENERS[name] = listen(name)
                return self.reply(200, {n: LISTENERS[n] for n in request["names"]})
            if self.path == "/__script":
                STATE.update(answers=list(request.get("answers", [])),
                             background=dict(request.get("background", {})), calls=[],
                             served_background=0)
                return self.reply(200, {})
        self.reply(404, {})

    def do_GET(self):
        with LOCK:
            self.reply(200, {"calls": STATE["calls"], "background": STATE["served_background"]})


def main():
    loopback.serve(Control, int(sys.argv[1]) if len(sys.argv) > 1 else 0)


if __name__ == "__main__":
    main()
