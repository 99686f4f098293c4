#!/usr/bin/env python3
"""A WebSocket echo upstream (RFC 6455, standard library only) for the tests behind portcullis.

On a `GET` with `Upgrade: websocket` it answers `101 Switching Protocols`, sends one text message
first: JSON of the handshake it received ({"path": ..., "headers": {lowercase name: [values]}}),
then echoes every text or binary message back, answers pings, and closes when the client does.
Any other request is plain HTTP:

  GET /__calls   how many handshakes it accepted: {"handshakes": N}

The frame helpers (`frame`, `read_frame`, `accept_key`) are shared with the tests' client.

Usage: ws_echo.py [PORT]   (0 picks a free port; the chosen port is printed). 127.0.0.1 only.
"""

import base64
import hashlib
import json
import struct
import sys
import threading

import loopback

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
TEXT, BINARY, CLOSE, PING, PONG = 0x1, 0x2, 0x8, 0x9, 0xA
MAX_PAYLOAD = 1 << 20
MAX_MESSAGES = 1000  # per connection: the echo loop is bounded
IDLE_SECONDS = 10
STATE = {"handshakes": 0}
LOCK = threading.Lock()


def accept_key(key):
    """Sec-WebSocket-Accept for a Sec-WebSocket-Key."""
    return base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()


def frame(opcode, payload, mask=None):
    """One final frame; clients pass a 4-byte `mask` (RFC 6455 5.3), servers none."""
    head = bytes([0x80 | opcode])
    bit = 0x80 if mask else 0
    n = len(payload)
    if n < 126:
        head += bytes([bit | n])
    elif n < 1 << 16:
        head += bytes([bit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([bit | 127]) + struct.pack("!Q", n)
    if mask:
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        head += mask
    return head + payload


def read_exact(read, n):
    data = read(n)
    if data is None or len(data) != n:
        raise EOFError("connection closed mid-frame")
    return data


def read_frame(read):
    """(opcode, payload) of the next frame, unmasked; `read(n)` reads from the stream."""
    b0, b1 = read_exact(read, 2)
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack("!H", read_exact(read, 2))[0]
    elif n == 127:
        n = struct.unpack("!Q", read_exact(read, 8))[0]
    if n > MAX_PAYLOAD:
        raise ValueError("frame too large")
    mask = read_exact(read, 4) if b1 & 0x80 else None
    payload = read_exact(read, n)
    if mask:
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return b0 & 0x0F, payload


class Handler(loopback.Handler):
    def do_GET(self):
        if (self.headers.get("Upgrade") or "").lower() != "websocket":
            if self.path == "/__calls":
                with LOCK:
                    return self.reply(200, dict(STATE))
            return self.reply(426, {"error": "WebSocket upgrade expected"})
        key = self.headers.get("Sec-WebSocket-Key")
        if not key:
            return self.reply(400, {"error": "Sec-WebSocket-Key missing"})
        with LOCK:
            STATE["handshakes"] += 1
        self.send_response(101, "Switching Protocols")
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept_key(key))
        self.end_headers()
        self.wfile.flush()
        headers = {}
        for name, value in self.headers.items():
            headers.setdefault(name.lower(), []).append(value)
        self.send(TEXT, json.dumps({"path": self.path, "headers": headers}).encode())
        self.connection.settimeout(IDLE_SECONDS)
        self.close_connection = True
        try:
            for _ in range(MAX_MESSAGES):
                opcode, payload = read_frame(self.rfile.read)
                if opcode in (TEXT, BINARY):
                    self.send(opcode, payload)
                elif opcode == PING:
                    self.send(PONG, payload)
                elif opcode == CLOSE:
                    self.send(CLOSE, payload[:2])
                    return
        except (OSError, EOFError, ValueError):
            return

    def send(self, opcode, payload):
        self.wfile.write(frame(opcode, payload))
        self.wfile.flush()


def main():
    loopback.serve(Handler, int(sys.argv[1]) if len(sys.argv) > 1 else 0)


if __name__ == "__main__":
    main()
