#!/usr/bin/env python3
"""Packs the release .wasm as an OCI image in Istio's "compat" format, without a container engine.

Istio's image fetcher (istio/istio pkg/wasm/imagefetcher.go) takes an OCI manifest's last layer,
requires the media type application/vnd.oci.image.layer.v1.tar+gzip, gunzips and untars it and
uses the member named plugin.wasm. A raw-wasm single-layer artifact is not that format. So the
image is: one gzipped tar layer holding exactly `plugin.wasm`, an image config, a manifest.

Output (an OCI image layout, and the same layout as an oci-archive tar):

    <out>/portcullis/            oci-layout, index.json (ref name = TAG), blobs/sha256/...
    <out>/portcullis.oci.tar     the layout as one file (skopeo's oci-archive: transport)

Everything is deterministic (fixed mtimes, uid/gid 0, no names in the gzip header, sorted JSON),
so one .wasm always gives one manifest digest. That digest (hex, without `sha256:`) is what a
WasmPlugin's `sha256` field must hold for an `oci://` url: Istio compares it with the manifest
digest it pulls (pkg/wasm/cache.go), not with the .wasm's own sha256.

Usage: build.py [--wasm PATH] [--out DIR] [--tag TAG]   (defaults: the release .wasm, target/oci,
the crate version). Prints the manifest digest and the .wasm sha256.
"""

import argparse
import gzip
import hashlib
import io
import json
import shutil
import sys
import re
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WASM = ROOT / "target/wasm32-wasip1/release/portcullis.wasm"
NAME = "portcullis"

MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
INDEX_TYPE = "application/vnd.oci.image.index.v1+json"
CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"
PLUGIN_FILE = "plugin.wasm"
# 2000-01-01: some tools treat a zero mtime as "unset"; any fixed value keeps digests stable.
EPOCH = 946684800


def canonical(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def digest(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def tar_bytes(members):
    """A ustar archive of (name, bytes, mode) members, owned by root, at EPOCH."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data, mode in members:
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), mode, EPOCH
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def gzip_bytes(data):
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as gz:
        gz.write(data)
    return buf.getvalue()


def image(wasm_bytes):
    """The blobs (digest -> bytes) and the manifest's descriptor."""
    layer_tar = tar_bytes([(PLUGIN_FILE, wasm_bytes, 0o644)])
    layer = gzip_bytes(layer_tar)
    # GOARCH/GOOS spelling, as the image spec asks; nothing reads it for a wasm plugin.
    config = canonical({
        "architecture": "wasm",
        "os": "wasip1",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [digest(layer_tar)]},
    })
    manifest = canonical({
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "config": {"mediaType": CONFIG_TYPE, "digest": digest(config), "size": len(config)},
        "layers": [{"mediaType": LAYER_TYPE, "digest": digest(layer), "size": len(layer)}],
    })
    blobs = {digest(b): b for b in (layer, config, manifest)}
    return blobs, {"mediaType": MANIFEST_TYPE, "digest": digest(manifest), "size": len(manifest)}


def write_layout(directory, blobs, manifest_desc, tag):
    """An OCI image layout; returns its files as (relative path, bytes), sorted."""
    index = canonical({
        "schemaVersion": 2,
        "mediaType": INDEX_TYPE,
        "manifests": [dict(manifest_desc, annotations={"org.opencontainers.image.ref.name": tag})],
    })
    files = [("oci-layout", canonical({"imageLayoutVersion": "1.0.0"})), ("index.json", index)]
    files += [("blobs/sha256/" + d.removeprefix("sha256:"), b) for d, b in blobs.items()]
    files.sort()
    if directory.exists():
        shutil.rmtree(directory)
    for rel, data in files:
        path = directory / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return files


def build(wasm_path, out, tag):
    wasm_bytes = Path(wasm_path).read_bytes()
    if wasm_bytes[:4] != b"\0asm":
        raise SystemExit(f"{wasm_path} is not a wasm module")
    blobs, manifest_desc = image(wasm_bytes)
    out.mkdir(parents=True, exist_ok=True)
    files = write_layout(out / NAME, blobs, manifest_desc, tag)
    (out / f"{NAME}.oci.tar").write_bytes(tar_bytes([(rel, data, 0o644) for rel, data in files]))
    return {
        "layout": str(out / NAME),
        "archive": str(out / f"{NAME}.oci.tar"),
        "tag": tag,
        "manifest_digest": manifest_desc["digest"],
        "wasm_sha256": hashlib.sha256(wasm_bytes).hexdigest(),
    }


def crate_version():
    """[package] version from Cargo.toml (no tomllib: any Python from 3.9 runs this)."""
    package = (ROOT / "Cargo.toml").read_text().split("\n[", 1)[0]
    return re.search(r'^version\s*=\s*"([^"]+)"', package, re.M).group(1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wasm", default=str(WASM))
    parser.add_argument("--out", default=str(ROOT / "target/oci"))
    parser.add_argument("--tag", default=None)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args()
    if not Path(args.wasm).exists():
        sys.exit(f"{args.wasm} is missing: run `make build`")
    result = build(args.wasm, Path(args.out), args.tag or crate_version())
    if args.json:
        print(json.dumps(result))
        return
    rel = Path(result["layout"]).resolve()
    rel = rel.relative_to(ROOT) if rel.is_relative_to(ROOT) else rel
    print(f"image layout     {rel}  (tag {result['tag']})")
    print(f"oci-archive      {result['archive']}")
    print(f"manifest digest  {result['manifest_digest']}   <- WasmPlugin spec.sha256 (hex part)")
    print(f"plugin.wasm      sha256:{result['wasm_sha256']}")
    print(f"push:  skopeo copy --preserve-digests oci:{rel}:{result['tag']} "
          f"docker://registry.example.com/portcullis:{result['tag']}")


if __name__ == "__main__":
    main()
