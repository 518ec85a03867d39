# Berth build, checks and test harness.
#
#   make build        bin/berth (version from git describe, else "dev")
#   make run          build, then bin/berth serve with the defaults (RUN_ARGS adds flags)
#   make tools        pinned clients and registries into .tools/bin (scripts/install-tools.sh)
#   make services     Redis on 127.0.0.1:6379 and PostgreSQL on 127.0.0.1:5432 (db test, trust auth)
#   make check        fmt-check + vet + lint
#   make test         everything CI runs: fmt-check, vet, lint, unit/integration tests of src/ (then again
#                     under -race), a short fuzz run of every Fuzz target, the e2e suite (tests/e2e) and
#                     the OCI conformance suite on SQLite and on PostgreSQL+Redis (tests/conformance);
#                     every stage runs even when an earlier one fails, then a summary (scripts/run-stages.sh)
#   make bench        benchmarks of src/ and tests/bench/
#
# Single stages: test-unit, test-race, fuzz, e2e, conformance. Knobs: see the variables below.

SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := build

GO        ?= go
ROOT      := $(abspath .)
BIN_DIR   := $(ROOT)/bin
BERTH_BIN := $(BIN_DIR)/berth
TOOLS_BIN ?= $(ROOT)/.tools/bin
VERSION   ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -X main.version=$(VERSION)

# Packages of src/ that also run under the race detector: those whose import path matches RACE_PATTERN
# (an extended regexp over `go list ./src/...`). All of them by default: the whole of `make test` takes a
# few minutes on 2 cores; narrow it (e.g. RACE_PATTERN='/src/(server|pkg/(proxy|referrers|cache|syncutil))')
# if the tree outgrows the 30-minute CI budget.
RACE_PATTERN ?= .
RACE_PKGS    ?= $(shell $(GO) list ./src/... 2>/dev/null | grep -E '$(RACE_PATTERN)' | grep -v '/src/cmd/' || true)

FUZZTIME         ?= 10s
UNIT_TIMEOUT     ?= 10m
E2E_TIMEOUT      ?= 20m
TEST_FLAGS       ?=
TEST_STAGES      ?= fmt-check vet lint test-unit test-race fuzz e2e conformance
CGO_ENABLED      ?= 0

export TOOLS_BIN

.PHONY: build run tools services check fmt-check vet lint test test-unit test-race fuzz e2e conformance \
        bench clean help

help:
	@sed -n '1,/^$$/p' Makefile | sed 's/^# \{0,1\}//'

## build: the server binary.
build: $(BERTH_BIN)

# Always relinked (go's build cache makes it cheap); the version stamp follows the work tree.
$(BERTH_BIN): FORCE
	@mkdir -p $(BIN_DIR)
	CGO_ENABLED=$(CGO_ENABLED) $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $@ ./src/cmd/berth

FORCE:

## run: the server with its defaults (127.0.0.1:5000, ./data).
run: build
	$(BERTH_BIN) serve $(RUN_ARGS)

## tools: pinned oras, crane, cosign, notation, conformance, distribution registry, golangci-lint, versitygw (S3 tests).
tools:
	scripts/install-tools.sh

## services: Redis and PostgreSQL for the integration tests (installs and starts them when missing).
services:
	scripts/ensure-services.sh

check: fmt-check vet lint

fmt-check:
	@out=$$(gofmt -l src $(wildcard tests)); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi; \
	echo "gofmt: clean"

vet:
	$(GO) vet ./src/... ./tests/...

lint:
	scripts/install-tools.sh golangci-lint
	$(TOOLS_BIN)/golangci-lint run ./src/... ./tests/...

## test: everything CI runs (.ci/run). Each stage runs; the summary and exit code cover them all.
test: services tools
	scripts/run-stages.sh $(TEST_STAGES)

test-unit:
	BERTH_TOOLS_BIN=$(TOOLS_BIN) $(GO) test -count=1 -timeout $(UNIT_TIMEOUT) $(TEST_FLAGS) ./src/... ./tests/bench/...

test-race:
	@if [ -z "$(strip $(RACE_PKGS))" ]; then echo "test-race: no package matches RACE_PATTERN"; exit 0; fi
	BERTH_TOOLS_BIN=$(TOOLS_BIN) CGO_ENABLED=1 $(GO) test -race -count=1 -timeout $(UNIT_TIMEOUT) $(TEST_FLAGS) $(RACE_PKGS)

fuzz:
	FUZZTIME=$(FUZZTIME) scripts/fuzz.sh

e2e: build
	scripts/install-tools.sh oras crane cosign notation registry
	BERTH_BIN=$(BERTH_BIN) BERTH_TOOLS_BIN=$(TOOLS_BIN) BERTH_REQUIRE_REDIS=1 \
		$(GO) test -count=1 -v -timeout $(E2E_TIMEOUT) $(TEST_FLAGS) ./tests/e2e/...

# The OCI conformance suite once per metadata backend and storage (CONFORMANCE_BACKENDS; "+s3" = blobs in a versitygw); each run goes even when
# an earlier one failed. Results: tests/results/conformance-<backend>/.
CONFORMANCE_BACKENDS ?= sqlite postgres postgres+s3
conformance: build
	scripts/install-tools.sh conformance versitygw
	@rc=0; for b in $(CONFORMANCE_BACKENDS); do \
		BACKEND=$$b BERTH_BIN=$(BERTH_BIN) TOOLS_BIN=$(TOOLS_BIN) tests/conformance/run.sh || rc=1; \
	done; exit $$rc

## bench: Go micro-benchmarks of src/, then the load suite (scripts/bench.sh) that writes docs/performance.md.
bench: build
	$(GO) test -run '^$$' -bench . -benchmem ./src/...
	scripts/bench.sh $(BENCH_ARGS)

clean:
	rm -rf $(BIN_DIR) tests/results
