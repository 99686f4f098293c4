"""`make oci` (envoy/oci/build.py): the release .wasm as an OCI image in Istio's compat format.

The image is opened the way Istio's fetcher opens it (pkg/wasm/imagefetcher.go: the manifest's last
layer must be application/vnd.oci.image.layer.v1.tar+gzip; it is gunzipped and untarred and the
member named plugin.wasm is the module), and every digest is recomputed from the bytes. With skopeo
installed it also reads both the layout and the archive."""

import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WASM = ROOT / "target/wasm32-wasip1/release/portcullis.wasm"
BUILD = ROOT / "envoy/oci/build.py"
TAG = "9.9.9-test"


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def build(out, wasm=WASM):
    if not wasm.exists():
        pytest.fail(f"{wasm} is missing: run `make build`")
    run = subprocess.run([sys.executable, str(BUILD), "--wasm", str(wasm), "--out", str(out), "--tag", TAG,
                          "--json"], capture_output=True, text=True, timeout=120, check=True)
    return json.loads(run.stdout)


class Layout:
    """An OCI image layout read from a directory or from the files of an oci-archive."""

    def __init__(self, files):
        self.files = files

    @classmethod
    def from_dir(cls, path):
        return cls({str(p.relative_to(path)): p.read_bytes() for p in path.rglob("*") if p.is_file()})

    @classmethod
    def from_archive(cls, path):
        with tarfile.open(path) as tar:
            return cls({m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()})

    def json(self, name):
        return json.loads(self.files[name])

    def blob(self, descriptor):
        """The blob a descriptor names, checked against the descriptor's digest and size."""
        algorithm, hex_digest = descriptor["digest"].split(":")
        assert algorithm == "sha256"
        data = self.files["blobs/sha256/" + hex_digest]
        assert sha256(data) == hex_digest, "a blob's content does not match its name"
        assert len(data) == descriptor["size"]
        return data

    def manifest(self, tag):
        index = self.json("index.json")
        assert self.json("oci-layout") == {"imageLayoutVersion": "1.0.0"}
        [desc] = [m for m in index["manifests"]
                  if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag]
        assert desc["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
        return desc, json.loads(self.blob(desc))


def istio_extract(layout, tag):
    """What Istio's compat-variant fetcher does with the image; returns plugin.wasm's bytes."""
    _, manifest = layout.manifest(tag)
    layer = manifest["layers"][-1]
    assert layer["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip"
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(layout.blob(layer)))) as tar:
        for member in tar.getmembers():
            if os.path.basename(member.name) == "plugin.wasm":
                return tar.extractfile(member).read()
    raise AssertionError("plugin.wasm not found in the layer")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("oci")
    return out, build(out)


def check_image(layout, result):
    wasm = WASM.read_bytes()
    desc, manifest = layout.manifest(TAG)
    assert desc["digest"] == result["manifest_digest"]
    assert manifest["schemaVersion"] == 2
    assert len(manifest["layers"]) == 1, "Istio's compat variant is one layer"

    layer_gz = layout.blob(manifest["layers"][0])
    layer_tar = gzip.decompress(layer_gz)
    with tarfile.open(fileobj=io.BytesIO(layer_tar)) as tar:
        members = tar.getmembers()
        assert [m.name for m in members] == ["plugin.wasm"], "exactly plugin.wasm, nothing else"
        assert members[0].isfile() and members[0].mode == 0o644
        assert (members[0].uid, members[0].gid, members[0].uname, members[0].gname) == (0, 0, "", "")
        assert sha256(tar.extractfile(members[0]).read()) == sha256(wasm) == result["wasm_sha256"]

    config = json.loads(layout.blob(manifest["config"]))
    assert manifest["config"]["mediaType"] == "application/vnd.oci.image.config.v1+json"
    assert config["rootfs"] == {"type": "layers", "diff_ids": ["sha256:" + sha256(layer_tar)]}
    assert (config["architecture"], config["os"]) == ("wasm", "wasip1")
    assert istio_extract(layout, TAG) == wasm


def test_the_layout_holds_one_layer_with_plugin_wasm_and_every_digest_is_right(built):
    out, result = built
    assert Path(result["layout"]) == out / "portcullis"
    check_image(Layout.from_dir(out / "portcullis"), result)


def test_the_oci_archive_holds_the_same_layout(built):
    out, result = built
    archive = Layout.from_archive(out / "portcullis.oci.tar")
    assert archive.files == Layout.from_dir(out / "portcullis").files
    check_image(archive, result)


def test_the_build_is_reproducible_and_follows_the_wasm(built, tmp_path):
    out, result = built
    again = build(tmp_path / "again")
    assert again["manifest_digest"] == result["manifest_digest"]
    assert (tmp_path / "again/portcullis.oci.tar").read_bytes() == (out / "portcullis.oci.tar").read_bytes()
    # One byte more in the module is another layer, config and manifest.
    other = tmp_path / "other.wasm"
    other.write_bytes(WASM.read_bytes() + b"\0")
    changed = build(tmp_path / "changed", other)
    assert changed["manifest_digest"] != result["manifest_digest"]
    assert changed["wasm_sha256"] == sha256(other.read_bytes())


def test_a_file_that_is_not_wasm_is_refused(tmp_path):
    bogus = tmp_path / "bogus.wasm"
    bogus.write_bytes(b"#!/bin/sh\n")
    run = subprocess.run([sys.executable, str(BUILD), "--wasm", str(bogus), "--out", str(tmp_path / "o")],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode != 0 and "not a wasm module" in run.stderr
    assert not (tmp_path / "o/portcullis").exists()


@pytest.mark.skipif(shutil.which("skopeo") is None, reason="skopeo is not installed (apt-get install skopeo)")
@pytest.mark.parametrize("transport", ["oci", "oci-archive"])
def test_skopeo_reads_the_image(built, transport):
    out, result = built
    path = out / ("portcullis" if transport == "oci" else "portcullis.oci.tar")
    run = subprocess.run(["skopeo", "inspect", f"{transport}:{path}:{TAG}"], capture_output=True, text=True,
                         timeout=60, check=True)
    info = json.loads(run.stdout)
    assert info["Digest"] == result["manifest_digest"]
    assert len(info["Layers"]) == 1
    raw = subprocess.run(["skopeo", "inspect", "--raw", f"{transport}:{path}:{TAG}"], capture_output=True,
                         timeout=60, check=True).stdout
    assert "sha256:" + sha256(raw) == result["manifest_digest"]
