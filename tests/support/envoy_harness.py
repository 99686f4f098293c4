"""Starting Envoy with portcullis (and the stand-ins it talks to) on loopback, for the Envoy test
tier, `make run` and the benchmarks. Everything binds to 127.0.0.1 and is stopped on exit."""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
WASM = ROOT / "target/wasm32-wasip1/release/portcullis.wasm"
# The test-only build that traps on request (`make build-trap`, cargo feature test-trap).
TRAP_WASM = ROOT / "target/trap/wasm32-wasip1/release/portcullis.wasm"
SUPPORT = ROOT / "tests/support"


def identity(name):
    """The identity id the Kratos stand-in (kratos.py) answers for the session `valid-<name>`."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "identity/" + name))


def envoy_binary():
    local = ROOT / ".venv/bin/envoy"
    if local.exists():
        return str(local)
    return shutil.which("envoy")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_script(script, *args, cpus=None):
    """Starts a stand-in that prints its port on its first line; returns (process, port).
    `cpus` pins it (taskset), as the benchmarks do."""
    cmd = [sys.executable, str(SUPPORT / script), "0", *args]
    if cpus is not None:
        cmd = ["taskset", "-c", cpus] + cmd
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    port = int(proc.stdout.readline())
    return proc, port


BOOTSTRAP = ROOT / "envoy/kratos.yaml"


def fill(text, values):
    """Replaces the ${NAME} placeholders of a shipped bootstrap (envoy/README.md); every one must
    have a value."""
    def value(match):
        if match.group(1) not in values:
            raise KeyError(f"no value for ${{{match.group(1)}}}")
        return str(values[match.group(1)])
    return re.sub(r"\$\{([A-Z0-9_]+)\}", value, text)


def load_bootstrap(path, values):
    """A shipped bootstrap with its placeholders filled, as a dict."""
    return yaml.safe_load(fill(Path(path).read_text(), values))


def connection_manager(bootstrap):
    listener = bootstrap["static_resources"]["listeners"][0]
    return listener["filter_chains"][0]["filters"][0]["typed_config"]


def stand_in_cluster(name, port):
    return {"name": name, "connect_timeout": "1s", "type": "STATIC", "load_assignment": {
        "cluster_name": name, "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {
            "socket_address": {"address": "127.0.0.1", "port_value": port}}}}]}]}}


def render(filter_config, ports, runtime="v8", filters=True, route=None, block=None, wasm_options=None,
           wasm=WASM, hcm_options=None, clusters=None, after=None, access_log=None):
    """The bootstrap text: envoy/kratos.yaml with the ports filled and `filter_config` (the filter's
    configuration text, YAML or JSON) in place of Play 2. `filters=False` gives the same listener
    without portcullis; `block` replaces portcullis with other HTTP filters (YAML at any
    indentation, @NAME@ ports filled), for the benchmarks' comparisons; `wasm_options` adds fields
    to the wasm PluginConfig (e.g. allow_on_headers_stop_iteration, failure_policy), `hcm_options` to
    the HTTP connection manager (e.g. request_timeout); `wasm` is the .wasm to load (TRAP_WASM);
    `clusters` ({name: port}) points those clusters, new or not, at stand-ins on loopback; `after`
    (YAML, a list of HTTP filters) goes between portcullis and the router; `access_log` (a list of
    access loggers, YAML or data) becomes the connection manager's `access_log`."""
    values = dict(ports)
    values["WASM"] = str(wasm)
    bootstrap = load_bootstrap(BOOTSTRAP, values)
    hcm = connection_manager(bootstrap)
    # Room for the 64 KiB header tests: the filter, not Envoy, must answer those.
    hcm["max_request_headers_kb"] = 96
    hcm.update(hcm_options or {})
    wasm, router = hcm["http_filters"]
    plugin = wasm["typed_config"]["config"]
    plugin["configuration"]["value"] = filter_config
    plugin["vm_config"]["runtime"] = "envoy.wasm.runtime." + runtime
    plugin.update(wasm_options or {})
    if block is not None:
        for name, port in ports.items():
            block = block.replace("@" + name + "@", str(port))
        hcm["http_filters"] = (yaml.safe_load(block) or []) + [router]
    elif not filters:
        hcm["http_filters"] = [router]
    else:
        hcm["http_filters"] = [wasm] + (yaml.safe_load(after or "[]") or []) + [router]
    if access_log is not None:
        hcm["access_log"] = yaml.safe_load(access_log) if isinstance(access_log, str) else access_log
    route = yaml.safe_load(route or "route: { cluster: upstream }")
    hcm["route_config"]["virtual_hosts"][0]["routes"] = [dict({"match": {"prefix": "/"}}, **route)]
    # Stand-ins only some tests and benchmarks use.
    bootstrap["static_resources"]["clusters"] += [stand_in_cluster("keto", ports["KETO_PORT"]),
                                                  stand_in_cluster("authz", ports["AUTHZ_PORT"])]
    for name, port in (clusters or {}).items():
        bootstrap["static_resources"]["clusters"] = [
            c for c in bootstrap["static_resources"]["clusters"] if c["name"] != name] + [stand_in_cluster(name, port)]
    return json.dumps(bootstrap, indent=1)


class Envoy:
    """One Envoy process. Use as a context manager."""

    def __init__(self, filter_config, concurrency=1, runtime="v8", filters=True, route=None,
                 upstream_port=None, kratos_port=None, jwks_port=None, cpus=None, expect_ready=True,
                 listen_port=None, block=None, authz_port=None, wasm_log_level=None, keto_port=None,
                 wasm_options=None, bootstrap=None, values=None, wasm=WASM, hcm_options=None,
                 clusters=None, after=None, access_log=None):
        self.binary = envoy_binary()
        if not self.binary:
            raise RuntimeError("envoy is not installed: run `make venv`")
        if filters and block is None and not Path(wasm).exists():
            raise RuntimeError(f"{wasm} is missing: run `make build` (or `make build-trap`)")
        self.port = listen_port or free_port()
        self.admin = free_port()
        ports = {"LISTEN_PORT": self.port, "ADMIN_PORT": self.admin,
                 "UPSTREAM_PORT": upstream_port or free_port(),
                 "KRATOS_PORT": kratos_port or free_port(), "JWKS_PORT": jwks_port or free_port(),
                 "AUTHZ_PORT": authz_port or free_port(), "KETO_PORT": keto_port or free_port()}
        self.dir = tempfile.mkdtemp(prefix="portcullis-envoy-")
        self.config_path = os.path.join(self.dir, "envoy.yaml")
        # An `access_log` may write here: ${ACCESS_LOG} is replaced by this path.
        self.access_log_path = os.path.join(self.dir, "access.log")
        if isinstance(access_log, str):
            access_log = access_log.replace("${ACCESS_LOG}", self.access_log_path)
        if bootstrap is not None:
            # A shipped bootstrap as a user runs it: only its placeholders are filled.
            text = fill(Path(bootstrap).read_text(), {**ports, "WASM": str(wasm), **(values or {})})
        else:
            text = render(filter_config, ports, runtime, filters, route, block, wasm_options, wasm=wasm,
                          hcm_options=hcm_options, clusters=clusters, after=after, access_log=access_log)
        Path(self.config_path).write_text(text)
        self.log_path = os.path.join(self.dir, "envoy.log")
        self.concurrency = concurrency
        self.cpus = cpus
        self.expect_ready = expect_ready
        self.wasm_log_level = wasm_log_level
        self.proc = None

    def __enter__(self):
        cmd = [self.binary, "-c", self.config_path, "--concurrency", str(self.concurrency),
               "--use-dynamic-base-id", "-l", "info", "--log-path", self.log_path,
               "--disable-hot-restart", "--file-flush-interval-msec", "100"]
        if self.wasm_log_level:
            cmd += ["--component-log-level", f"wasm:{self.wasm_log_level}"]
        if self.cpus is not None:
            cmd = ["taskset", "-c", self.cpus] + cmd
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("envoy exited early:\n" + self.log())
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.admin}/ready", timeout=1) as r:
                    if r.status == 200:
                        return self
            except Exception:
                if not self.expect_ready and self._listening():
                    return self
            time.sleep(0.1)
        self.__exit__(None, None, None)
        raise RuntimeError("envoy did not become ready:\n" + self.log())

    def _listening(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return True
        except OSError:
            return False

    def __exit__(self, *exc):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return False

    def log(self):
        try:
            return Path(self.log_path).read_text()[-20000:]
        except OSError:
            return ""

    def access_lines(self):
        """The access log's lines so far."""
        try:
            return Path(self.access_log_path).read_text().splitlines()
        except OSError:
            return []

    def access_line(self, index, timeout=5.0):
        """Access log line `index` (0 is the first), waiting for Envoy to flush it."""
        deadline = time.time() + timeout
        while True:
            lines = self.access_lines()
            if len(lines) > index:
                return lines[index]
            if time.time() > deadline:
                raise AssertionError(f"access log line {index} never came; the log has {len(lines)}")
            time.sleep(0.02)

    def stats(self, prefix=""):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.admin}/stats?filter={prefix}", timeout=5) as r:
            return r.read().decode()

    def pid(self):
        return self.proc.pid

    def stat(self, name):
        """One counter or gauge from /stats, 0 when Envoy has not created it."""
        for line in self.stats(name).splitlines():
            key, _, value = line.partition(": ")
            if key == name:
                return int(value)
        return 0

    def rss_kib(self):
        for line in Path(f"/proc/{self.pid()}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS for envoy")


class EcdsFile:
    """The extension config file envoy/ecds.yaml watches (envoy/ecds-portcullis.yaml with the
    filter configuration replaced), replaced atomically as an operator would: written beside it,
    then renamed over it. `plugin` adds or replaces PluginConfig fields (e.g. failure_policy)."""

    def __init__(self, directory, name="portcullis.json", wasm=WASM, plugin=None):
        self.dir = Path(directory)
        self.name = name
        self.template = json.loads(json.dumps(yaml.safe_load(fill(
            (ROOT / "envoy/ecds-portcullis.yaml").read_text(), {"WASM": str(wasm)}))))
        self.template["resources"][0]["typed_config"]["config"].update(plugin or {})
        self.writes = 0

    def write(self, config):
        doc = json.loads(json.dumps(self.template))
        doc["resources"][0]["typed_config"]["config"]["configuration"]["value"] = config
        tmp = self.dir / "next.tmp"
        tmp.write_text(json.dumps(doc))
        os.rename(tmp, self.dir / self.name)
        self.writes += 1
