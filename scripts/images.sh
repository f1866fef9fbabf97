#!/usr/bin/env bash
# make images: builds, without pulling any base image, local images under the names the container
# mode of the tests uses (settings: CNPG_PREFLIGHT_MINIO_IMAGE, CNPG_PREFLIGHT_AZURITE_IMAGE,
# CNPG_PREFLIGHT_IMAGE), from the same pinned binaries as the process mode:
#   MinIO:          a static binary in an image from scratch
#   Azurite:        the node runtime, its shared libraries and the pinned azurite package
#   cnpg-preflight: the static binary and CA certificates (what deploy/Dockerfile builds)
# Needs a Docker engine (DOCKER_HOST); uses `docker import`.
set -euo pipefail
cd "$(dirname "$0")/.."
TOOLS=${CNPG_PREFLIGHT_TOOLS:-$HOME/.cache/cnpg-preflight/tools}
MINIO_IMAGE=${CNPG_PREFLIGHT_MINIO_IMAGE:-minio/minio:RELEASE.2026-02-12T20-18-48Z}
AZURITE_IMAGE=${CNPG_PREFLIGHT_AZURITE_IMAGE:-mcr.microsoft.com/azure-storage/azurite:3.35.0}
PREFLIGHT_IMAGE=${CNPG_PREFLIGHT_IMAGE:-cnpg-preflight:dev}
log() { echo "images: $*" >&2; }
if [ "${1:-}" = --if-missing ]; then
  if docker image inspect "$MINIO_IMAGE" "$AZURITE_IMAGE" "$PREFLIGHT_IMAGE" >/dev/null 2>&1; then exit 0; fi
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# MinIO: the static binary of the pinned version that the process mode runs too.
scripts/install-deps.sh minio
mkdir -p "$work/minio/usr/bin" "$work/minio/data" "$work/minio/tmp"
cp "$TOOLS/bin/minio" "$work/minio/usr/bin/minio"
tar -C "$work/minio" -c . | docker import -c 'ENTRYPOINT ["/usr/bin/minio"]' -c 'CMD ["server", "/data"]' \
  -c 'ENV MINIO_BROWSER=off' -c 'EXPOSE 9000' - "$MINIO_IMAGE" >/dev/null
log "built $MINIO_IMAGE"

# Azurite: node + its libraries + the pinned package, with /usr/bin/env for the package's shebangs.
scripts/install-deps.sh azurite
root="$work/azurite"
mkdir -p "$root/usr/bin" "$root/opt" "$root/usr/local/bin" "$root/data" "$root/tmp"
node=$(readlink -f "$(command -v node)")
cp "$node" "$root/usr/bin/node"
cp /usr/bin/env "$root/usr/bin/env"
for lib in $( (ldd "$node"; ldd /usr/bin/env) | awk '/=>/ {print $3} /^[ \t]*\/lib/ {print $1}' | sort -u); do
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done
cp -a "$TOOLS/azurite" "$root/opt/azurite"
for b in azurite azurite-blob; do ln -s "/opt/azurite/node_modules/.bin/$b" "$root/usr/local/bin/$b"; done
tar -C "$root" -c . | docker import -c 'ENV PATH=/usr/local/bin:/usr/bin:/bin' -c 'WORKDIR /opt/azurite' \
  -c 'CMD ["azurite-blob", "--blobHost", "0.0.0.0", "--location", "/data"]' -c 'EXPOSE 10000' - "$AZURITE_IMAGE" >/dev/null
log "built $AZURITE_IMAGE"

# cnpg-preflight itself.
mkdir -p "$work/pf/etc/ssl/certs" "$work/pf/tmp"
CGO_ENABLED=0 go build -tags disable_grpc_modules -trimpath -ldflags "-s -w" -o "$work/pf/cnpg-preflight" ./cmd/cnpg-preflight
cp /etc/ssl/certs/ca-certificates.crt "$work/pf/etc/ssl/certs/"
tar -C "$work/pf" -c . | docker import -c 'ENTRYPOINT ["/cnpg-preflight"]' -c 'USER 65532:65532' - "$PREFLIGHT_IMAGE" >/dev/null
log "built $PREFLIGHT_IMAGE"
