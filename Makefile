# cnpg-preflight — see README.md. Two commands set everything up on a fresh machine:
#   make demo   starts local servers and runs the tool on example manifests
#   make test   all tests, installing and starting what they need
SHELL := /bin/bash
GO ?= go
BIN := bin/cnpg-preflight
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X github.com/cnpg-preflight/cnpg-preflight/cli.Version=$(VERSION)
# disable_grpc_modules drops the GCS client's gRPC transport (we use its JSON API): every build and
# test uses it, so what runs is what ships.
TAGS := disable_grpc_modules
export CNPG_PREFLIGHT_RUN ?= /tmp/cnpg-preflight-servers
SERVERS_ENV := $(CNPG_PREFLIGHT_RUN)/servers.env

.PHONY: build deps servers servers-stop test unit demo fuzz bench images clean

# Benchmarks against the local servers: bench/results/results.json and summary.md.
bench: build servers
	scripts/install-deps.sh awscli
	CNPG_PREFLIGHT_SERVERS=$(SERVERS_ENV) $(GO) run -tags $(TAGS) ./bench $(BIN)

build:
	CGO_ENABLED=0 $(GO) build -tags $(TAGS) -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/cnpg-preflight

deps:
	scripts/install-deps.sh
	scripts/build-kube.sh
	scripts/build-barman.sh

servers: deps
	scripts/servers.sh start

servers-stop:
	scripts/servers.sh stop

# All tests: unit tests plus the integration suites against the real servers (required here).
# MinIO and Azurite run as containers when a Docker engine answers (local images are built when
# missing), as processes otherwise; CNPG_PREFLIGHT_SERVER_MODE=containers|processes forces one.
test: servers
	@mode=$${CNPG_PREFLIGHT_SERVER_MODE:-}; \
	if [ -z "$$mode" ]; then if docker version >/dev/null 2>&1; then mode=containers; else mode=processes; fi; fi; \
	if [ "$$mode" = containers ]; then scripts/images.sh --if-missing; fi; \
	echo "make test: server mode $$mode"; \
	CNPG_PREFLIGHT_SERVER_MODE=$$mode CNPG_PREFLIGHT_INTEGRATION=1 CNPG_PREFLIGHT_SERVERS=$(SERVERS_ENV) $(GO) test -tags $(TAGS) -count=1 -timeout 25m ./...

# Local images for the container mode, built from the pinned binaries without pulling anything.
images:
	scripts/images.sh

# Unit tests only (no servers).
unit:
	$(GO) test -tags $(TAGS) -count=1 ./...

demo: build
	scripts/install-deps.sh minio mc versitygw azurite fake-gcs
	scripts/servers.sh start
	scripts/demo.sh $(BIN)

# Fuzz each target for FUZZTIME (seed corpora: testdata/fuzz/ of each package and the f.Add seeds).
FUZZTIME ?= 30s
fuzz:
	$(GO) test -tags $(TAGS) ./manifest -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME)
	$(GO) test -tags $(TAGS) ./providers/s3 -run '^$$' -fuzz '^FuzzParseS3$$' -fuzztime $(FUZZTIME)
	$(GO) test -tags $(TAGS) ./providers/azure -run '^$$' -fuzz '^FuzzParseAzure$$' -fuzztime $(FUZZTIME)
	$(GO) test -tags $(TAGS) ./checks -run '^$$' -fuzz '^FuzzWALName$$' -fuzztime $(FUZZTIME)
	$(GO) test -tags $(TAGS) ./checks -run '^$$' -fuzz '^FuzzWALHeader$$' -fuzztime $(FUZZTIME)
	$(GO) test -tags $(TAGS) ./internal/text -run '^$$' -fuzz '^FuzzSanitize$$' -fuzztime $(FUZZTIME)

clean:
	rm -rf bin
