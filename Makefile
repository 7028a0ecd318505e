# pushfn's build, test and lint. `make help` lists the targets.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

GO ?= go
FUNCTIONS := ApiFunction DeliverFunction RelayFunction
# Pinned tools, fetched through the Go module proxy (staticcheck 2026.2.2 supports Go 1.26).
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
LAMBDA_BUILD := GOOS=linux GOARCH=arm64 CGO_ENABLED=0 $(GO) build -tags lambda.norpc -trimpath -ldflags "-s -w"

# build_function builds package $(1) as $(ARTIFACTS_DIR)/bootstrap (sam build sets ARTIFACTS_DIR;
# without it the binary goes to bin/$(2)/bootstrap).
define build_function
	$(LAMBDA_BUILD) -o $(or $(ARTIFACTS_DIR),bin/$(2))/bootstrap $(1)
endef

.PHONY: help build build-ApiFunction build-DeliverFunction build-RelayFunction test lint bench run invoke emulators-up emulators-down clean

help: ## list the targets
	@grep -E '^[A-Za-z_-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | awk -F'\t' '{ printf "  %-22s %s\n", $$1, $$2 }'

build: ## build the three functions: sam build when SAM CLI is installed, else bin/<LogicalId>/bootstrap
	@if command -v sam >/dev/null 2>&1; then sam build; \
	else for f in $(FUNCTIONS); do $(MAKE) build-$$f ARTIFACTS_DIR=$(CURDIR)/bin/$$f; echo "built bin/$$f/bootstrap"; done; fi

build-ApiFunction: ## build the api function (linux/arm64 bootstrap into $ARTIFACTS_DIR)
	$(call build_function,./functions/api,ApiFunction)

build-DeliverFunction: ## build the deliver function (linux/arm64 bootstrap into $ARTIFACTS_DIR)
	$(call build_function,./functions/deliver,DeliverFunction)

build-RelayFunction: ## build the relay function (linux/arm64 bootstrap into $ARTIFACTS_DIR)
	$(call build_function,./functions/relay,RelayFunction)

test: ## all tests with -race, integration tests against the emulators (started and stopped as needed)
	@dev/test.sh

lint: ## gofmt, go vet and staticcheck
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './dev/node_modules/*')); \
	if [ -n "$$unformatted" ]; then echo "gofmt: not formatted:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

run: ## run pushfn locally: emulators, API on http://127.0.0.1:3000, delivery; Ctrl-C stops it all
	@$(GO) run ./cmd/pushfn run $(ARGS)

invoke: ## invoke a function once: make invoke FN=RelayFunction EVENT=events/eventbridge.json [ARGS=...]
	@$(GO) run ./cmd/pushfn invoke $(FN) -e $(EVENT) $(ARGS)

bench: ## delivery engine vs wrk on a loopback receiver: prints ratios and peak RSS
	@bash dev/bench.sh

emulators-up: ## install if needed and start the local SQS and DynamoDB emulators (no-op when running)
	@$(GO) run ./cmd/pushfn emulators up

emulators-down: ## stop the emulators that emulators-up started
	@$(GO) run ./cmd/pushfn emulators down

clean: ## remove build output (.aws-sam, bin) and stopped emulators' logs
	rm -rf .aws-sam bin
	@if [ -d .pushfn ] && ! ls .pushfn/*.pid >/dev/null 2>&1; then rm -rf .pushfn; fi
