"""Bounded concurrent load for the Envoy tests and soaks (tests/envoy/test_trap.py,
tests/soak/swaps.py): a few threads, each on its own keep-alive connection, send what `next_request`
gives and record every outcome. Bounded by a deadline and by a request count per thread; nothing
here ever prints a credential."""

import http.client
import json
import threading
import time
from dataclasses import dataclass, field


@dataclass
class Outcome:
    kind: str
    started: float      # time.monotonic() when sent
    finished: float
    status: int          # 0: no HTTP answer (reset, closed, timed out)
    forwarded: dict = field(default=None)  # the echo upstream's view of a forwarded request
    details: str = ""    # a 5xx's body (its cause), or "timeout" / "reset" for status 0
    tag: object = None   # what the request generator attached (e.g. the expectation)

    def seen(self, header):
        """The first value of `header` as the upstream received it, or None."""
        values = (self.forwarded or {}).get("headers", {}).get(header) or []
        return values[0] if values else None


def send(box, port, method, host, path, headers, timeout):
    """One request on the thread's keep-alive connection; a fresh one after any failure. Returns
    (status, body, why): status 0 when no answer came, `why` then "timeout" or "reset"."""
    if box[0] is None:
        box[0] = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    conn = box[0]
    try:
        conn.request(method, path, headers={"Host": host, **headers})
        r = conn.getresponse()
        body = r.read()
        if (r.getheader("connection") or "").lower() == "close":
            conn.close()
            box[0] = None
        return r.status, body, ""
    except TimeoutError:
        why = "timeout"
    except (OSError, http.client.HTTPException):
        why = "reset"
    conn.close()
    box[0] = None
    return 0, b"", why


def forwarded_view(status, body):
    """The echo upstream's JSON, when the answer is one (a forwarded request)."""
    if status != 200:
        return None
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) and "headers" in doc else None


class Load:
    """`next_request(n)` -> (kind, host, path, headers, tag). Use as a context manager; `stop()`
    ends it early; `outcomes` holds everything sent."""

    def __init__(self, port, next_request, clients=4, seconds=10.0, max_per_client=20_000, timeout=10,
                 pause=0.0):
        self.port = port
        self.next_request = next_request
        self.clients = clients
        self.deadline = time.monotonic() + seconds
        self.max_per_client = max_per_client
        self.timeout = timeout
        self.pause = pause
        self.outcomes = []
        self.lock = threading.Lock()
        self.counter = 0
        self.halt = threading.Event()
        self.threads = []

    def _client(self):
        box = [None]
        for _ in range(self.max_per_client):
            if self.halt.is_set() or time.monotonic() >= self.deadline:
                break
            with self.lock:
                n = self.counter
                self.counter += 1
            kind, host, path, headers, tag = self.next_request(n)
            started = time.monotonic()
            status, body, why = send(box, self.port, "GET", host, path, headers, self.timeout)
            outcome = Outcome(kind, started, time.monotonic(), status, forwarded_view(status, body), tag=tag)
            outcome.details = why or (body[:200].decode(errors="replace") if status >= 500 else "")
            with self.lock:
                self.outcomes.append(outcome)
            if self.pause:
                time.sleep(self.pause)
        if box[0] is not None:
            box[0].close()

    def __enter__(self):
        self.threads = [threading.Thread(target=self._client, daemon=True) for _ in range(self.clients)]
        for t in self.threads:
            t.start()
        return self

    def stop(self):
        self.halt.set()
        self.join()

    def join(self):
        # Each thread ends by the deadline plus one request's timeout.
        for t in self.threads:
            t.join(timeout=max(0.0, self.deadline - time.monotonic()) + self.timeout + 5)
        alive = [t for t in self.threads if t.is_alive()]
        assert not alive, f"{len(alive)} load threads did not finish"

    def __exit__(self, *exc):
        self.stop()
        return False

    def snapshot(self):
        with self.lock:
            return list(self.outcomes)
