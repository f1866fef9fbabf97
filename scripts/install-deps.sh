#!/usr/bin/env bash
# Installs the pinned servers and clients the integration tests and `make demo` use.
# Idempotent: a tool already built at the pinned version is kept. Everything lands in $TOOLS
# (default ~/.cache/cnpg-preflight/tools) so repeated runs and CI on the same machine reuse it.
# Usage: scripts/install-deps.sh [minio mc versitygw azurite fake-gcs barman prometheus tinyproxy awscli]
#        (default: all but awscli, which only make bench needs)
set -euo pipefail

TOOLS=${CNPG_PREFLIGHT_TOOLS:-$HOME/.cache/cnpg-preflight/tools}
MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c
MC_VERSION=v0.0.0-20250313080218-cf909e1063a9
VERSITYGW_VERSION=v1.8.0
AZURITE_VERSION=3.35.0
FAKE_GCS_VERSION=v1.56.1
TINYPROXY_VERSION=1.11.1-2.1+deb12u1

mkdir -p "$TOOLS/bin"
log() { echo "install-deps: $*" >&2; }

go_tool() { # name package version — static binaries (CGO off): the same file serves the
  # process mode and the images built from scratch (scripts/images.sh)
  local name=$1 pkg=$2 ver=$3 stamp="$TOOLS/bin/.$1-static-$3"
  if [ -x "$TOOLS/bin/$name" ] && [ -f "$stamp" ]; then return; fi
  log "building $name $ver (go install)"
  CGO_ENABLED=0 GOBIN="$TOOLS/bin" GOFLAGS=-mod=mod go install -trimpath -ldflags "-s -w" "$pkg@$ver"
  touch "$stamp"
}

want() { [ $# -eq 0 ] && return 0; return 1; }
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(minio mc versitygw azurite fake-gcs barman prometheus tinyproxy)

for t in "${targets[@]}"; do
  case "$t" in
  minio) go_tool minio github.com/minio/minio "$MINIO_VERSION" ;;
  mc) go_tool mc github.com/minio/mc "$MC_VERSION" ;;
  versitygw) go_tool versitygw github.com/versity/versitygw/cmd/versitygw "$VERSITYGW_VERSION" ;;
  fake-gcs) go_tool fake-gcs-server github.com/fsouza/fake-gcs-server "$FAKE_GCS_VERSION" ;;
  azurite)
    if [ ! -x "$TOOLS/azurite/node_modules/.bin/azurite-blob" ] || [ ! -f "$TOOLS/azurite/.v$AZURITE_VERSION" ]; then
      log "installing azurite $AZURITE_VERSION (npm)"
      mkdir -p "$TOOLS/azurite"
      npm install --silent --no-audit --no-fund --prefix "$TOOLS/azurite" "azurite@$AZURITE_VERSION" >/dev/null
      touch "$TOOLS/azurite/.v$AZURITE_VERSION"
    fi
    ln -sf "$TOOLS/azurite/node_modules/.bin/azurite-blob" "$TOOLS/bin/azurite-blob" ;;
  barman)
    if ! [ -x /usr/bin/barman-cloud-check-wal-archive ] || ! /usr/bin/python3 -c 'import boto3, azure.storage.blob, psycopg2' 2>/dev/null \
      || ! [ -x /usr/lib/postgresql/15/bin/initdb ]; then
      log "installing barman-cli-cloud and PostgreSQL 15 (apt)"
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -qq >/dev/null
      apt-get install -y -qq --no-install-recommends barman-cli-cloud python3-boto3 python3-azure python3-psycopg2 postgresql-15 >/dev/null
    fi ;;
  prometheus)
    # Prometheus and promtool from Debian 12 (2.42): the serve tests scrape with the real server,
    # the rule files are checked with promtool (the tests run their own Prometheus on a free port).
    if ! [ -x /usr/bin/prometheus ] || ! [ -x /usr/bin/promtool ]; then
      log "installing prometheus (apt)"
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -qq >/dev/null
      apt-get install -y -qq --no-install-recommends prometheus >/dev/null
    fi ;;
  tinyproxy)
    # Debian 12's tinyproxy (the binary package only, unpacked into $TOOLS: no service is
    # installed or started); the proxy tests start their own instance on a free port.
    if ! [ -x "$TOOLS/bin/tinyproxy" ] || ! [ -f "$TOOLS/tinyproxy/.v$TINYPROXY_VERSION" ]; then
      log "installing tinyproxy $TINYPROXY_VERSION (apt-get download, unpacked)"
      rm -rf "$TOOLS/tinyproxy" && mkdir -p "$TOOLS/tinyproxy"
      apt-get update -qq >/dev/null
      (cd "$TOOLS/tinyproxy" && apt-get download -qq "tinyproxy-bin=$TINYPROXY_VERSION" >/dev/null && dpkg -x tinyproxy-bin_*.deb root && rm -f tinyproxy-bin_*.deb)
      touch "$TOOLS/tinyproxy/.v$TINYPROXY_VERSION"
    fi
    ln -sf "$TOOLS/tinyproxy/root/usr/bin/tinyproxy" "$TOOLS/bin/tinyproxy" ;;
  awscli)
    if ! command -v aws >/dev/null; then
      log "installing awscli (apt, for make bench)"
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -qq >/dev/null
      apt-get install -y -qq --no-install-recommends awscli >/dev/null
    fi ;;
  *) echo "install-deps: unknown tool $t" >&2; exit 2 ;;
  esac
done
log "tools ready in $TOOLS/bin"
