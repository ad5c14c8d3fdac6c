# The two commands a newcomer needs are `make demo` and `make test`.
# Everything they need is installed by scripts/bootstrap.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
CARGO ?= cargo
export TANDEM_TERRAFORM ?= $(CURDIR)/scripts/terraform
# Rust backtraces never belong in Terraform diagnostics or test logs.
export RUST_LIB_BACKTRACE := 0

.PHONY: all bootstrap build test unit acceptance lint fmt docs docs-check demo bench fuzz release clean

all: build

bootstrap:
	@scripts/bootstrap

build: bootstrap
	$(CARGO) build --workspace --all-targets

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

# Everything CI runs: lint, then every test (unit, integration against real
# SeaweedFS/Redis/nginx, acceptance through real Terraform against moto) from
# one shared debug build, in parallel.
test: bootstrap lint
	$(CARGO) build --workspace --all-targets
	TF_ACC=1 scripts/run-tests
	@scripts/docs check

docs: bootstrap
	$(CARGO) build -p terraform-provider-tandem -p tandem-docgen
	scripts/docs write

demo: bootstrap
	$(CARGO) build -p terraform-provider-tandem -p tandem-review -p tandem-proxy
	scripts/demo

# Not part of `make test`: measurements need a quiet machine. Results and
# their method go to docs/benchmarks.md by hand, from the scripts' output.
bench: bootstrap
	$(CARGO) build --release --workspace
	scripts/bench-plan
	scripts/bench-proxy

# Long property-test runs of request parsing, key validation, range
# arithmetic, the breaker, cache keys and the rate limiter (make test runs
# the same properties with proptest's default 256 cases each).
fuzz: bootstrap
	PROPTEST_CASES=$${PROPTEST_CASES:-200000} $(CARGO) test --release -p tandem-proxy --lib

release: bootstrap
	scripts/release

clean:
	$(CARGO) clean
