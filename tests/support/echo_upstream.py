#!/usr/bin/env python3
"""The demo and test upstream: answers every request with 200 and a JSON echo of what it got.

{"method": ..., "path": ..., "headers": {lowercase name: [values...]}}

Usage: echo_upstream.py [PORT]   (0 picks a free port; the chosen port is printed). 127.0.0.1 only.
"""

import http.client
import sys

import loopback



# The tests send 64 KiB header values through Envoy; the stdlib parser stops at 64 KiB lines.
http.client._MAXLINE = 1 << 20


class Handler(loopback.Handler):
    def handle_any(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {}
        for name, value in self.headers.items():
            headers.setdefault(name.lower(), []).append(value)
        self.reply(200, {"method": self.command, "path": self.path, "headers": headers,
                         "body_bytes": len(body)})

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = handle_any


def main():
    loopback.serve(Handler, int(sys.argv[1]) if len(sys.argv) > 1 else 0)


if __name__ == "__main__":
    main()
