# CapyDB developer entry points. GNU make.
#
#   make run     install missing deps, build (dashboard included), start `capydb server` (ARGS="--listen ..." to pass flags)
#   make web     build the dashboard (npm ci + vite build into web/dist, embedded by go:embed)
#   make sdk     regenerate the TypeScript SDK (sdk/typescript) and Go client (pkg/capydb) from the served OpenAPI document
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

.PHONY: help deps build run test test-fleet bench lint fmt-check vet staticcheck clean web sdk terraform-provider

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

deps: ## check for (and, as root on Debian/Ubuntu, install) postgres, pgbouncer, go
	@./scripts/ensure-deps.sh

# The dashboard: web/dist is embedded into the binary (web/embed.go). A plain
# `go build` without it still works and serves a page saying how to build it.
WEB_SRC := $(shell find web/src web/index.html web/vite.config.ts web/tsconfig.json sdk/typescript/src -type f 2>/dev/null)
NPM_CI  := npm ci --ignore-scripts --no-audit --no-fund

web/node_modules/.package-lock.json: web/package-lock.json
	@command -v npm >/dev/null || { echo "npm is missing: run make deps (or install nodejs and npm)"; exit 1; }
	cd web && $(NPM_CI)

web/dist/index.html: web/node_modules/.package-lock.json $(WEB_SRC)
	cd web && npm run build

web: web/dist/index.html ## build the dashboard into web/dist (npm ci + vite build)

sdk: ## regenerate sdk/typescript/src/gen and pkg/capydb from the served OpenAPI document
	CAPYDB_UPDATE_SDK=1 $(GO) test -count=1 -run 'TestTypeScriptSDKIsCurrent|TestGoClientIsCurrent' ./internal/api/sdkcheck/

build: web ## build bin/capydb (dashboard included)
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/capydb

# The Terraform provider (docs/terraform.md): its own binary, named as
# Terraform expects. The printed snippet goes into a TF_CLI_CONFIG_FILE.
TF_PROVIDER := bin/terraform-provider-capydb

terraform-provider: ## build bin/terraform-provider-capydb and print the dev_overrides block that uses it
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(TF_PROVIDER) ./cmd/terraform-provider-capydb
	@printf 'provider_installation {\n  dev_overrides {\n    "capydb/capydb" = "%s"\n  }\n  direct {}\n}\n' "$(abspath bin)"

run: deps build ## start the server with the embedded cluster (pass flags with ARGS="...")
	./$(BIN) server $(ARGS)

# The packages whose goroutines share state (clone workers, queue and webhook
# loops, the service kit, the Studio runner and its cancel) run a second time
# under the race detector.
RACE_PKG ?= ./internal/dataplane/ ./internal/bgsvc/ ./internal/queue/ ./internal/webhooks/ ./internal/dataplane/studio/
# From localcluster, only the test of Stop against a deferred pooler sync.
RACE_LOCALCLUSTER = ^TestStopWaitsForDeferredSync$$

test: deps web ## run all tests (they start their own Postgres + pgBouncer), then the concurrent packages with -race
	cd web && npx vitest run
	$(GO) test -count=1 -timeout 20m -p 2 $(PKG)
	CGO_ENABLED=1 $(GO) test -race -count=1 -timeout 10m -p 2 $(RACE_PKG)
	CGO_ENABLED=1 $(GO) test -race -count=1 -timeout 5m -run '$(RACE_LOCALCLUSTER)' ./internal/localcluster/

test-fleet: deps ## the multi-host test alone: control plane and node in network namespaces (needs root; also part of make test)
	$(GO) test -count=1 -timeout 10m -v ./e2e/fleet/

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
	rm -rf bin web/test-output
	find web/dist -mindepth 1 -not -name .keep -delete 2>/dev/null || true
	$(GO) clean -testcache
