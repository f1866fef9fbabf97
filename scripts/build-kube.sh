#!/usr/bin/env bash
# Builds a real etcd and kube-apiserver from Go modules (no downloads besides the module proxy)
# into $TOOLS/bin, for the Kubernetes integration tests. Idempotent; ~5 min on 2 cores the first time.
set -euo pipefail
TOOLS=${CNPG_PREFLIGHT_TOOLS:-$HOME/.cache/cnpg-preflight/tools}
ETCD_VERSION=v3.6.16
KUBE_VERSION=v1.37.2
STAGING_VERSION=v0.37.2
mkdir -p "$TOOLS/bin"
log() { echo "build-kube: $*" >&2; }

if ! [ -x "$TOOLS/bin/etcd" ] || ! [ -f "$TOOLS/bin/.etcd-$ETCD_VERSION" ]; then
  log "building etcd $ETCD_VERSION"
  d=$(mktemp -d)
  (cd "$d" && cat >go.mod <<MOD
module local/etcdbuild
go 1.26.0
require go.etcd.io/etcd/server/v3 $ETCD_VERSION
MOD
    GOFLAGS=-mod=mod go get go.etcd.io/etcd/server/v3@$ETCD_VERSION >/dev/null 2>&1
    GOFLAGS=-mod=mod go build -trimpath -ldflags "-s -w" -o "$TOOLS/bin/etcd" go.etcd.io/etcd/server/v3)
  rm -rf "$d"
  touch "$TOOLS/bin/.etcd-$ETCD_VERSION"
fi

if ! [ -x "$TOOLS/bin/kube-apiserver" ] || ! [ -f "$TOOLS/bin/.kube-apiserver-$KUBE_VERSION" ]; then
  log "building kube-apiserver $KUBE_VERSION"
  d=$(mktemp -d)
  gomod=$(go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",*/\1/p')
  {
    echo "module local/kubebuild"
    echo "go 1.26.0"
    echo "require k8s.io/kubernetes $KUBE_VERSION"
    # every staging module kubernetes replaces with ./staging/... is taken at its published version
    grep -E '^\s*k8s.io/[a-z0-9-]+ => ./staging/' "$gomod" | awk -v v="$STAGING_VERSION" '{print "replace " $1 " => " $1 " " v}'
  } >"$d/go.mod"
  (cd "$d" && GOFLAGS=-mod=mod go get "k8s.io/kubernetes/cmd/kube-apiserver@$KUBE_VERSION" >/dev/null 2>&1 &&
    GOFLAGS=-mod=mod go build -trimpath -ldflags "-s -w" -o "$TOOLS/bin/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver)
  rm -rf "$d"
  touch "$TOOLS/bin/.kube-apiserver-$KUBE_VERSION"
fi
log "ready: $TOOLS/bin/etcd $TOOLS/bin/kube-apiserver"
