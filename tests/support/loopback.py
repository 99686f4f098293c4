"""What every stand-in shares: a quiet HTTP/1.1 handler that answers JSON or bytes, and serving
it on 127.0.0.1 with the port printed on the first line (0 picks a free one)."""

import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body, headers=None, content_type="application/json"):
        """`body` is sent as is when it is bytes, as JSON otherwise."""
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)


class Server(ThreadingHTTPServer):
    # The default listen backlog (5) drops connections of a burst (a SYN retried after 1 s,
    # past Envoy's 1 s connect timeout: a 503 that is the stand-in's, not the filter's).
    request_queue_size = 128


def serve(handler, port):
    server = Server(("127.0.0.1", port), handler)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
