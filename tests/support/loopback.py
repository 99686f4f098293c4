"""Serving a stand-in on 127.0.0.1: the port is printed on the first line (0 picks a free one)."""

from http.server import ThreadingHTTPServer


def serve(handler, port):
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
