"""Failure modes the Kratos and JWKS stand-ins share, for the fault tests and the soak:

  reset         the connection is reset (RST) without an answer
  hang          nothing is answered for `hang_ms` (past any sane callout timeout), then closed
  garbage-http  bytes that are not HTTP at all, then closed
  huge          200 with a 10 MiB JSON body
  flap          alternates every `flap_ms` between answering normally and resetting

Every mode is bounded: a hang lasts at most 10 s, the big body is built once."""

import socket
import struct
import time

MODES = ("reset", "hang", "garbage-http", "huge", "flap")
HUGE_BYTES = 10 << 20
MAX_HANG_MS = 10_000
_HUGE = None


def huge_body():
    global _HUGE
    if _HUGE is None:
        pad = HUGE_BYTES - len(b'{"pad":""}')
        _HUGE = b'{"pad":"' + b"a" * pad + b'"}'
    return _HUGE


def flapping_down(flap_ms):
    """Whether a `flap` stand-in is in its down half now."""
    return int(time.monotonic() * 1000 // max(1, flap_ms)) % 2 == 1


def reset(handler):
    """Closes with SO_LINGER 0, so the peer sees a reset instead of an orderly close."""
    handler.close_connection = True
    try:
        handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    handler.connection.close()


def act(handler, mode, hang_ms=3000, flap_ms=1000):
    """Carries out `mode` on the request `handler` is serving; False when the request should be
    answered normally (an unknown mode, or `flap` in its up half)."""
    if mode == "flap":
        mode = "reset" if flapping_down(flap_ms) else None
    if mode == "reset":
        reset(handler)
    elif mode == "hang":
        time.sleep(min(hang_ms, MAX_HANG_MS) / 1000)
        reset(handler)
    elif mode == "garbage-http":
        handler.close_connection = True
        handler.wfile.write(b"\x16\x03\x01\x00 this is not HTTP \xff\xfe\r\n\r\n")
        handler.wfile.flush()
        handler.connection.close()
    elif mode == "huge":
        handler.reply(200, huge_body())
    else:
        return False
    return True
