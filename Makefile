# CapyDB developer entry points. GNU make.
#
#   make run     install missing deps, build, start `capydb server` (ARGS="--listen ..." to pass flags)
#   make test    install missing deps, run the whole test suite against real Postgres + pgBouncer
#   make bench   run the benchmark harness; results land in bench/results/
#   make lint    gofmt (must be clean), go vet, staticcheck when installed

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := build

GO      ?= go
GOFMT   ?= $(shell $(GO) env GOROOT 2>/dev/null)/bin/gofmt
BIN     := bin/capydb
PKG     ?= ./...
ARGS    ?=
BENCH_ARGS ?=
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/capydb/capydb/internal/cli.Version=$(VERSION)

.PHONY: help deps build run test bench lint fmt-check vet staticcheck clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

deps: ## check for (and, as root on Debian/Ubuntu, install) postgres, pgbouncer, go
	@./scripts/ensure-deps.sh

build: ## build bin/capydb
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/capydb

run: deps build ## start the server with the embedded cluster (pass flags with ARGS="...")
	./$(BIN) server $(ARGS)

# The packages whose goroutines share state (clone workers, queue and webhook
# loops, the service kit, the Studio runner and its cancel) run a second time
# under the race detector.
RACE_PKG ?= ./internal/dataplane/ ./internal/bgsvc/ ./internal/queue/ ./internal/webhooks/ ./internal/dataplane/studio/

test: deps ## run all tests (they start their own Postgres + pgBouncer), then the concurrent packages with -race
	$(GO) test -count=1 -timeout 14m -p 2 $(PKG)
	CGO_ENABLED=1 $(GO) test -race -count=1 -timeout 10m -p 2 $(RACE_PKG)

bench: deps build ## run the benchmark harness; results land in bench/results/
	@mkdir -p bench/results
	$(GO) run ./bench/cmd/capybench -out bench/results $(BENCH_ARGS)

lint: fmt-check vet staticcheck ## gofmt -l must be empty, go vet, staticcheck if installed

fmt-check:
	@files=$$(find . -type f -name '*.go' -not -path './.git/*' -not -path './vendor/*' -not -path '*/testdata/*'); \
	if [ -z "$$files" ]; then exit 0; fi; \
	unformatted=$$($(GOFMT) -l $$files); \
	if [ -n "$$unformatted" ]; then \
		echo "gofmt: these files need formatting (run: gofmt -w <file>):"; \
		echo "$$unformatted"; \
		exit 1; \
	fi; \
	echo "gofmt: ok"

vet:
	$(GO) vet $(PKG)

staticcheck:
	@if command -v staticcheck >/dev/null 2>&1; then \
		echo "staticcheck $(PKG)"; staticcheck $(PKG); \
	else \
		echo "staticcheck: not installed, skipped (go install honnef.co/go/tools/cmd/staticcheck@latest)"; \
	fi

clean: ## remove build output and cached test results
	rm -rf bin
	$(GO) clean -testcache
