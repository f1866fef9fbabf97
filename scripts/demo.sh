#!/usr/bin/env bash
# make demo: seeds the local servers for the example manifests in testdata/demo and shows the matrix.
set -euo pipefail
BIN=${1:-bin/cnpg-preflight}
RUN=${CNPG_PREFLIGHT_RUN:-/tmp/cnpg-preflight-servers}
TOOLS=${CNPG_PREFLIGHT_TOOLS:-$HOME/.cache/cnpg-preflight/tools}
export MC_CONFIG_DIR=$RUN/mc
"$TOOLS/bin/mc" --quiet mb --ignore-existing local/demo-backups >/dev/null
# Azure (Azurite) container and GCS (emulator) bucket for pg-azure and pg-gcs.
set -a; . "$RUN/servers.env"; set +a
go run ./internal/seed "$AZURITE_ENDPOINT" "$AZURITE_ACCOUNT" "$AZURITE_KEY" demo-backups "$GCS_EMULATOR_HOST" demo-backups
export STORAGE_EMULATOR_HOST=$GCS_EMULATOR_HOST
# The restored cluster's source: an archive holding one WAL from an "old" cluster (the start of a
# real PostgreSQL 15 segment, gzipped as barman-cloud-wal-archive --gzip does).
gzip -c checks/testdata/wal/000000010000000000000001.head | "$TOOLS/bin/mc" --quiet pipe local/demo-backups/pg-old/pg-old/wals/0000000100000000/000000010000000000000001.gz >/dev/null

echo "\$ STORAGE_EMULATOR_HOST=$STORAGE_EMULATOR_HOST $BIN check -f testdata/demo/"
echo
set +e
"$BIN" check -f testdata/demo/
code=$?
set -e
echo
echo "exit code $code (0 = no check failed, 1 = a check failed, 2 = bad input)."
echo "S3 (MinIO), Azure (Azurite) and GCS (emulator) side by side: healthy Clusters and some with mistakes users make; see testdata/demo/*.yaml."
