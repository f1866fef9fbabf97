#!/usr/bin/env bash
# Builds the reference backup client: barman-cli-cloud 3.13 (boto3 1.37, azure-storage-blob 12.26)
# in a Debian 13 (trixie) root made with debootstrap, cached in $TOOLS/trixie. The integration
# tests run the barman-cloud commands inside it with chroot (see internal/testenv/barman.go).
# Idempotent; the first run takes 10–25 minutes on 2 cores (download, unpack, byte-compiling Python).
set -euo pipefail
TOOLS=${CNPG_PREFLIGHT_TOOLS:-$HOME/.cache/cnpg-preflight/tools}
ROOT="$TOOLS/trixie"
STAMP="$ROOT/.cnpg-preflight-barman-3.13-v2"
# python3-azure (azure-identity, 500 MB) is left out: barman imports it only for managed identity /
# default credentials, which cannot be exercised here.
PKGS="barman-cli-cloud python3-boto3 python3-azure-storage python3-snappy python3-zstandard python3-lz4 python3-psycopg2"
log() { echo "build-barman: $*" >&2; }

if [ -f "$STAMP" ] && [ -x "$ROOT/usr/bin/barman-cloud-check-wal-archive" ]; then
  log "ready: $ROOT ($(cat "$STAMP"))"
  exit 0
fi
if ! command -v debootstrap >/dev/null; then
  log "installing debootstrap (apt)"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
fi
start=$(date +%s)
tmp="$ROOT.tmp"
# a half-built root from an interrupted run is discarded (bind mounts first)
if [ -d "$tmp" ]; then
  for m in proc dev; do umount "$tmp/$m" 2>/dev/null || true; done
  rm -rf "$tmp"
fi
log "debootstrap trixie into $tmp"
debootstrap --variant=minbase --include=ca-certificates trixie "$tmp" >"$TOOLS/trixie-debootstrap.log" 2>&1 ||
  { tail -20 "$TOOLS/trixie-debootstrap.log" >&2; exit 1; }
log "installing $PKGS"
mount -t proc proc "$tmp/proc"
trap 'umount "$tmp/proc" 2>/dev/null || true' EXIT
chroot "$tmp" sh -c "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $PKGS && apt-get clean" \
  >"$TOOLS/trixie-apt.log" 2>&1 || { tail -20 "$TOOLS/trixie-apt.log" >&2; exit 1; }
umount "$tmp/proc"
trap - EXIT
ver=$(chroot "$tmp" barman-cloud-check-wal-archive --version 2>&1)
boto=$(chroot "$tmp" python3 -c 'import boto3; print(boto3.__version__)')
blob=$(chroot "$tmp" python3 -c 'import azure.storage.blob as b; print(b.__version__)')
echo "$ver boto3 $boto azure-storage-blob $blob" >"$tmp/$(basename "$STAMP")"
# an older root may be bind-mounted by scripts/servers.sh (with /tmp inside): unmount first
RUN=${CNPG_PREFLIGHT_RUN:-/tmp/cnpg-preflight-servers}
for m in "$RUN/trixie/tmp" "$RUN/trixie"; do mountpoint -q "$m" 2>/dev/null && umount "$m"; done
rm -rf "$ROOT"
mv "$tmp" "$ROOT"
log "ready: $ROOT ($(cat "$STAMP")) in $(( $(date +%s) - start )) s"
