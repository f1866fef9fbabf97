#!/usr/bin/env bash
# make demo: seeds the local servers for the example manifests in testdata/demo and shows the matrix.
set -euo pipefail
BIN=${1:-bin/cnpg-preflight}
RUN=${CNPG_PREFLIGHT_RUN:-/tmp/cnpg-preflight-servers}
TOOLS=${CNPG_PREFLIGHT_TOOLS:-$HOME/.cache/cnpg-preflight/tools}
export MC_CONFIG_DIR=$RUN/mc
"$TOOLS/bin/mc" --quiet mb --ignore-existing local/demo-backups >/dev/null
# The restored cluster's source: an archive holding one WAL from an "old" cluster.
echo "demo" | "$TOOLS/bin/mc" --quiet pipe local/demo-backups/pg-old/pg-old/wals/0000000100000000/000000010000000000000001.gz >/dev/null

echo "\$ $BIN check -f testdata/demo/"
echo
set +e
"$BIN" check -f testdata/demo/
code=$?
set -e
echo
echo "exit code $code (0 = no check failed, 1 = a check failed, 2 = bad input)."
echo "The demo has one healthy Cluster and two with mistakes users make; see testdata/demo/*.yaml."
