# The README's commands run through here. `make test` is what CI runs.
GO ?= go
export GOFLAGS ?= -buildvcs=false

.PHONY: test unit build vet fuzz cross bench bench-full testdc-up testdc-down demo

## demo: the local demo (starts the throw-away Samba AD DC if needed);
## ADW_DEMO_BIND=kerberos binds with a keytab instead of a password.
demo:
	bash integration/scripts/install-deps.sh
	$(GO) run ./integration/cmd/demo

## test: every test there is, unit and integration, with the race detector.
test: vet cross
	$(GO) test -race -count=1 -tags integration -timeout 25m ./...
	$(GO) test -race -count=1 -tags faultinject ./connector/engine/
	FUZZTIME=$${FUZZTIME:-8s} bash integration/scripts/fuzz.sh

## fuzz: every fuzz target for FUZZTIME (default 10s) each.
fuzz:
	bash integration/scripts/fuzz.sh

## cross: the binary for every supported platform.
cross:
	CGO_ENABLED=0 GOOS=linux GOARCH=amd64 $(GO) build -o /dev/null ./connector/cmd/adwriteback
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build -o /dev/null ./connector/cmd/adwriteback
	CGO_ENABLED=0 GOOS=windows GOARCH=amd64 $(GO) build -o /dev/null ./connector/cmd/adwriteback
	GOOS=windows GOARCH=amd64 $(GO) vet ./connector/... ./ldapx/... ./relay/...

## bench: the reduced benchmark (connector-bound + DC-bound), table on
## stdout and in integration/artifacts/bench-RESULTS.md. Built as the
## shipped binary is (CGO_ENABLED=0: the pure-Go resolver, no libc).
bench:
	mkdir -p integration/artifacts
	CGO_ENABLED=0 $(GO) run ./integration/cmd/bench -out integration/artifacts/bench-RESULTS.md

## bench-full: the full benchmark; rewrites integration/bench/RESULTS.md.
bench-full:
	CGO_ENABLED=0 $(GO) run ./integration/cmd/bench -full

## unit: unit tests only (no Samba, no emulator).
unit:
	$(GO) test -race -count=1 ./...

vet:
	$(GO) vet ./...
	$(GO) vet -tags integration ./...

build:
	CGO_ENABLED=0 $(GO) build -o bin/adwriteback ./connector/cmd/adwriteback

## testdc-up / testdc-down: start or destroy the throw-away Samba AD DC.
testdc-up:
	$(GO) run ./integration/cmd/testdc up

testdc-down:
	$(GO) run ./integration/cmd/testdc down
