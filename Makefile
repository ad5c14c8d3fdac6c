# The two commands a newcomer needs are `make demo` and `make test`. Each
# installs what it uses, and only that (scripts/bootstrap demo|test|bench);
# `cargo build` alone needs nothing but Rust.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
CARGO ?= cargo
export TANDEM_TERRAFORM ?= $(CURDIR)/scripts/terraform
# Rust backtraces never belong in Terraform diagnostics or test logs.
export RUST_LIB_BACKTRACE := 0

# `make demo KEEP=1` leaves the stack running; `make demo-down` stops it.
KEEP ?=

.PHONY: all bootstrap build test lint fmt docs demo demo-down bench fuzz release clean

all: build

# Everything `make test` installs.
bootstrap:
	@scripts/bootstrap test

build:
	$(CARGO) build --workspace --all-targets

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

# Everything CI runs: lint, then every test (unit, integration against real
# SeaweedFS and Redis, acceptance through real Terraform against moto, the
# demo report in headless Chromium) from one shared debug build, in parallel
# (and the proxy's release build, for a test the debug build cannot show).
test: bootstrap lint
	@# Modules, examples and their .tftest.hcl files in canonical form.
	TF_CLI_CONFIG_FILE=/dev/null $(TANDEM_TERRAFORM) fmt -check -recursive -diff modules examples
	$(CARGO) build --workspace --all-targets
	TF_ACC=1 scripts/run-tests
	@scripts/docs check

docs:
	@scripts/bootstrap demo
	$(CARGO) build -p terraform-provider-tandem -p tandem-docgen
	scripts/docs write

demo:
	@scripts/bootstrap demo
	$(CARGO) build -p terraform-provider-tandem -p tandem-review -p tandem-proxy
	KEEP=$(KEEP) scripts/demo

demo-down:
	scripts/demo down

# Not part of `make test`: measurements need a quiet machine. Results and
# their method go to docs/benchmarks.md by hand, from the scripts' output.
bench:
	@scripts/bootstrap bench
	$(CARGO) build --release --workspace
	scripts/bench-plan
	scripts/bench-proxy
	scripts/bench-route53

# Long property-test runs of request parsing, key validation, range
# arithmetic, the breaker, cache keys and the rate limiter (make test runs
# the same properties with proptest's default 256 cases each).
fuzz:
	PROPTEST_CASES=$${PROPTEST_CASES:-200000} $(CARGO) test --release -p tandem-proxy --lib

# dist/: this platform's provider, tandem-review and tandem-proxy archives
# and their sums. TANDEM_GPG_KEY_ID (a key in GNUPGHOME) signs the
# provider's SHA256SUMS; without it the sums stay unsigned, with a warning
# (RELEASING in docs/guides/installation.md).
release:
	@scripts/bootstrap demo
	scripts/release

clean:
	$(CARGO) clean
