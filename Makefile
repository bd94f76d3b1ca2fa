# Two commands matter: `make run` (set up everything, start the service with
# the local model server) and `make test` (set up the same, run every test).

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
MODELS_DIR ?= var/models
PORT ?= 8080
TFS_PORT ?= 8500
# Where maturin's editable install looks for the virtualenv.
export VIRTUAL_ENV := $(abspath $(VENV))

RUST_SOURCES := $(shell find rust_ext/src -name '*.rs' 2>/dev/null) rust_ext/Cargo.toml rust_ext/Cargo.lock

.PHONY: help system-packages image-packages browser-packages setup native models run test image-test soak lint protos bench fuzz clean

help:
	@echo "make run    set up and start the adapter on :$(PORT) with the local model server"
	@echo "make test   set up and run the whole test suite"
	@echo "make bench  run the benchmarks in bench/ (results in bench/results/)"
	@echo "make image-test  build the image on a debootstrap base and run it with podman"
	@echo "make soak   the 10-minute soak test (the default run has a 60 s one)"
	@echo "make lint   ruff, mypy, cargo fmt/clippy"
	@echo "make fuzz   fuzz the Rust decoder for FUZZ_SECONDS (default 300; nightly Rust)"

# Debian packages the build needs: cmake and nasm build libjpeg-turbo for the
# Rust extension. Installed with apt-get when missing (sudo unless root).
SYSTEM_PACKAGES := cmake nasm
# The image test builds and runs the container: podman with runc (crun cannot
# run on hybrid cgroups), and debootstrap for a base made from Debian's packages.
IMAGE_PACKAGES := podman runc debootstrap
# The demo page's tests drive headless Chromium with its WebDriver.
BROWSER_PACKAGES := chromium chromium-driver
BROWSER_COMMANDS := chromium chromedriver
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# $(call apt-install,commands[,packages]): install the Debian packages missing
# (named as their commands unless the packages, in the same order, are given).
define apt-install
	@packages=($(or $(2),$(1))); commands=($(1)); \
	missing=$$(for i in "$${!commands[@]}"; do \
		command -v "$${commands[$$i]}" >/dev/null || echo "$${packages[$$i]}"; done); \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:" $$missing; \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi
endef

system-packages:
	$(call apt-install,$(SYSTEM_PACKAGES))

image-packages:
	$(call apt-install,$(IMAGE_PACKAGES))

browser-packages:
	$(call apt-install,$(BROWSER_COMMANDS),$(BROWSER_PACKAGES))

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Python packages (the adapter, the backend extra, test tools) and the Rust
# extension, built by maturin through pip. Re-run when their inputs change.
$(VENV)/.installed: $(PY) pyproject.toml $(RUST_SOURCES) | system-packages
	$(BIN)/pip install --quiet --editable ".[backend,test,dev,bench]"
	@touch $@

setup: $(VENV)/.installed

native: setup

# Seeded and cached: a second run only checks the stamp.
models: setup
	$(BIN)/tfs-adapter build-demo-models --out $(MODELS_DIR)

run: models
	$(BIN)/tfs-adapter run-local --models-dir $(MODELS_DIR) --port $(PORT) --tfs-port $(TFS_PORT)

# The Rust crate's unit and property tests (against libjpeg-turbo; damaged
# inputs never panic), then the Python suite.
test: models image-packages browser-packages
	cd rust_ext && PYO3_PYTHON=$(abspath $(PY)) cargo test --release --quiet
	ADAPTER_DEMO_MODELS_DIR=$(abspath $(MODELS_DIR)) $(PY) -m pytest

lint: setup
	$(BIN)/ruff check adapter tests bench rust_ext/fuzz
	$(BIN)/ruff format --check adapter tests bench rust_ext/fuzz
	$(BIN)/mypy
	cd rust_ext && cargo fmt --check && cargo clippy --all-targets -- -D warnings

# Regenerate the adapter's wire protos (the generated files are committed).
protos: setup
	$(PY) -m grpc_tools.protoc -I . --python_out=. --pyi_out=. adapter/serving/protos/*.proto

bench: models
	$(PY) bench/coldstart.py
	$(PY) bench/preprocess.py
	$(PY) bench/transport.py
	$(PY) bench/api.py
	$(PY) bench/postprocess.py
	$(PY) bench/load.py

# Build the runtime image on a debootstrap base and run it read-only (tests/image).
image-test: models image-packages
	ADAPTER_DEMO_MODELS_DIR=$(abspath $(MODELS_DIR)) $(PY) -m pytest tests/image -s

# The soak test at full length (10 minutes); the default run has a 60 s one.
SOAK_SECONDS ?= 600
soak: models
	SOAK_SECONDS=$(SOAK_SECONDS) ADAPTER_DEMO_MODELS_DIR=$(abspath $(MODELS_DIR)) \
		$(PY) -m pytest tests/e2e/test_soak.py -s

# Fuzz the Rust decode entry point with libFuzzer (cargo-fuzz, nightly) for
# FUZZ_SECONDS; new inputs go to rust_ext/fuzz/work, crashes to fuzz/artifacts.
FUZZ_SECONDS ?= 300
fuzz: system-packages
	command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
	mkdir -p rust_ext/fuzz/work
	cd rust_ext && cargo +nightly fuzz run decode fuzz/work fuzz/corpus/decode -- \
		-max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 -timeout=10

clean:
	rm -rf $(VENV) var build rust_ext/target .pytest_cache
