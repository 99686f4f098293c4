#!/usr/bin/env python3
"""`make run`: Envoy with portcullis (filter-config/play2.yaml) on 127.0.0.1:10000 in front of the
echo upstream, the Kratos stand-in and the JWKS stand-in. Prints what to try; Ctrl-C stops
everything."""

import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import envoy_harness  # noqa: E402
import mint  # noqa: E402

LISTEN = 10000


def main():
    config = (envoy_harness.ROOT / "filter-config/play2.yaml").read_text()
    upstream, upstream_port = envoy_harness.start_script("echo_upstream.py")
    kratos, kratos_port = envoy_harness.start_script("kratos.py")
    jwks, jwks_port = envoy_harness.start_script("jwks.py")
    token = mint.mint(mint.azure_mi(sub="demo-vm", lifetime=86400))
    try:
        with envoy_harness.Envoy(config, upstream_port=upstream_port, kratos_port=kratos_port,
                                 jwks_port=jwks_port, listen_port=LISTEN) as e:
            base = f"http://127.0.0.1:{e.port}"
            print(f"""
portcullis is running: Envoy {base} (admin http://127.0.0.1:{e.admin}), filter-config/play2.yaml,
echo upstream on :{upstream_port}, Kratos stand-in on :{kratos_port}, JWKS stand-in on :{jwks_port}.
Envoy log: {e.log_path}

  # a guest: no session cookie
  curl -s {base}/anything -H 'Host: echo.example.com'
  # a Kratos session: the upstream sees alice's identity id and email
  curl -s {base}/anything -H 'Host: echo.example.com' -H 'Cookie: ory_kratos_session=valid-alice'
  # an invalid session: 401, no fall-through to guest
  curl -s {base}/anything -H 'Host: echo.example.com' -H 'Cookie: ory_kratos_session=expired'
  # a machine with an Azure-AD-style JWT (signed with a TEST key, valid for a day)
  curl -s {base}/anything -H 'Host: echo.example.com' -H 'Authorization: Bearer {token}'
  # a session token, as apps send it
  curl -s {base}/v1/me -H 'Host: api.example.com' -H 'X-Session-Token: valid-bob'
  # no rule for this host: 404
  curl -s {base}/ -H 'Host: nothing.example.com'
  # a spoofed identity header is replaced
  curl -s {base}/ -H 'Host: echo.example.com' -H 'x-user-id: admin'

Ctrl-C stops Envoy and the stand-ins.""", flush=True)
            signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
            while e.proc.poll() is None:
                time.sleep(0.5)
            print("envoy exited:\n" + e.log()[-2000:])
    except KeyboardInterrupt:
        print("\nstopping")
    finally:
        upstream.kill()
        kratos.kill()
        jwks.kill()


if __name__ == "__main__":
    main()
