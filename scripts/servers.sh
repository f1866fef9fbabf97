#!/usr/bin/env bash
# Starts (or stops) the real servers the integration tests and `make demo` use, on loopback:
#   MinIO (HTTP :19000, TLS :19443 with a generated CA), versitygw (:17070), Azurite (HTTP :10000,
#   HTTPS :10001 with the same CA), fake-gcs-server (:14443), and restricted MinIO
#   users made with mc. Writes $RUN/servers.env for the tests (CNPG_PREFLIGHT_SERVERS points to it).
# Usage: scripts/servers.sh start|stop|env
set -euo pipefail

TOOLS=${CNPG_PREFLIGHT_TOOLS:-$HOME/.cache/cnpg-preflight/tools}
RUN=${CNPG_PREFLIGHT_RUN:-/tmp/cnpg-preflight-servers}
BIN=$TOOLS/bin
MINIO_PORT=19000 MINIO_TLS_PORT=19443 MINIO_REGION_PORT=19200 VGW_PORT=17070 AZURITE_PORT=10000 AZURITE_TLS_PORT=10001
GCS_PORT=14443 ETCD_PORT=12379 ETCD_PEER_PORT=12380 KUBE_PORT=16443
AZURITE_ACCOUNT=devstoreaccount1
AZURITE_KEY='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='

ROOT_USER=preflight-root ROOT_PASS=preflight-root-secret-0001
VGW_USER=vgw-access VGW_PASS=vgw-secret-key-0001

log() { echo "servers: $*" >&2; }

wait_http() { # url [curl args]
  local url=$1; shift
  for _ in $(seq 1 150); do
    if curl -fsS -o /dev/null "$@" "$url" 2>/dev/null; then return 0; fi
    sleep 0.2
  done
  log "not ready after 30 s: $url"; return 1
}

start_bg() { # name cmd...
  local name=$1; shift
  nohup "$@" >"$RUN/$name.log" 2>&1 &
  echo $! >"$RUN/$name.pid"
}

certs() {
  local d=$RUN/tls
  # kept while the server certificate has more than 31 days left: the endpoint check warns
  # about a certificate expiring within 30 days
  [ -f "$d/ca.crt" ] && openssl x509 -checkend $((31 * 86400)) -noout -in "$d/minio/public.crt" >/dev/null 2>&1 && return
  rm -f "$d/admin.crt" # signed by the CA made again below
  mkdir -p "$d/minio"
  openssl req -x509 -newkey rsa:2048 -nodes -days 365 -subj "/CN=cnpg-preflight test CA" \
    -keyout "$d/ca.key" -out "$d/ca.crt" -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=keyCertSign,cRLSign" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout "$d/minio/private.key" -out "$d/server.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >"$d/ext.cnf"
  openssl x509 -req -in "$d/server.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial -days 365 \
    -extfile "$d/ext.cnf" -out "$d/minio/public.crt" 2>/dev/null
}

kube_certs() {
  local d=$RUN/tls
  [ -f "$d/admin.crt" ] && return
  openssl req -newkey rsa:2048 -nodes -subj "/O=system:masters/CN=preflight-admin" -keyout "$d/admin.key" -out "$d/admin.csr" 2>/dev/null
  printf 'extendedKeyUsage=clientAuth\n' >"$d/client.cnf"
  openssl x509 -req -in "$d/admin.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial -days 365 -extfile "$d/client.cnf" -out "$d/admin.crt" 2>/dev/null
  openssl genrsa -out "$d/sa.key" 2048 2>/dev/null
  openssl rsa -in "$d/sa.key" -pubout -out "$d/sa.pub" 2>/dev/null
}

# start_kube: a real etcd + kube-apiserver (RBAC on) when scripts/build-kube.sh has built them.
start_kube() {
  [ -x "$BIN/kube-apiserver" ] && [ -x "$BIN/etcd" ] || { log "no kube-apiserver (scripts/build-kube.sh): Kubernetes tests will skip"; return 0; }
  kube_certs
  mkdir -p "$RUN/etcd"
  start_bg etcd "$BIN/etcd" --data-dir "$RUN/etcd" --listen-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-cluster "default=http://127.0.0.1:$ETCD_PEER_PORT" \
    --listen-metrics-urls http://127.0.0.1:12381 --unsafe-no-fsync --log-level error
  wait_http "http://127.0.0.1:$ETCD_PORT/health"
  local d=$RUN/tls
  start_bg kube-apiserver "$BIN/kube-apiserver" --etcd-servers="http://127.0.0.1:$ETCD_PORT" --bind-address=127.0.0.1 \
    --advertise-address=127.0.0.1 --endpoint-reconciler-type=none --secure-port="$KUBE_PORT" \
    --tls-cert-file="$d/minio/public.crt" --tls-private-key-file="$d/minio/private.key" --client-ca-file="$d/ca.crt" \
    --authorization-mode=RBAC --service-cluster-ip-range=10.0.0.0/24 \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local --service-account-key-file="$d/sa.pub" \
    --service-account-signing-key-file="$d/sa.key" --disable-admission-plugins=ServiceAccount
  for _ in $(seq 1 300); do
    [ "$(curl -s --cacert "$d/ca.crt" --cert "$d/admin.crt" --key "$d/admin.key" "https://127.0.0.1:$KUBE_PORT/readyz" 2>/dev/null)" = ok ] && break
    sleep 0.2
  done
  cat >"$RUN/admin.kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters:
- name: preflight
  cluster: {server: "https://127.0.0.1:$KUBE_PORT", certificate-authority: "$d/ca.crt"}
users:
- name: admin
  user: {client-certificate: "$d/admin.crt", client-key: "$d/admin.key"}
contexts:
- name: preflight
  context: {cluster: preflight, user: admin, namespace: default}
current-context: preflight
KC
  echo "KUBE_ADMIN_KUBECONFIG=$RUN/admin.kubeconfig" >>"$RUN/servers.env"
  echo "KUBE_SERVER=https://127.0.0.1:$KUBE_PORT" >>"$RUN/servers.env"
}

# mount_barman: the Debian 13 root with barman-cloud 3.13 (scripts/build-barman.sh) is bind-mounted
# at $RUN/trixie, a path the postgres user can reach, with the machine's /tmp inside it at the same
# path (test scratch directories, CA files, WAL files and PostgreSQL sockets resolve there).
# Commands run in it with chroot (root) or unshare -r chroot (the postgres user's archive_command).
mount_barman() {
  local root=$TOOLS/trixie mnt=$RUN/trixie
  [ -x "$root/usr/bin/barman-cloud-check-wal-archive" ] || { log "no barman 3.13 root (scripts/build-barman.sh): barman comparisons will fail"; return 0; }
  mkdir -p "$mnt"
  mountpoint -q "$mnt" || mount --bind "$root" "$mnt"
  mountpoint -q "$mnt/tmp" || mount --bind /tmp "$mnt/tmp"
  echo "BARMAN_ROOT=$mnt" >>"$RUN/servers.env"
}

umount_barman() {
  local mnt=$RUN/trixie
  mountpoint -q "$mnt/tmp" 2>/dev/null && umount "$mnt/tmp"
  mountpoint -q "$mnt" 2>/dev/null && umount "$mnt"
  return 0
}

start() {
  if [ -f "$RUN/servers.env" ] && curl -fsS -o /dev/null "http://127.0.0.1:$MINIO_PORT/minio/health/live" 2>/dev/null; then
    log "already running ($RUN/servers.env)"; return
  fi
  for b in minio mc versitygw azurite-blob fake-gcs-server; do [ -x "$BIN/$b" ] || { log "$BIN/$b missing: run scripts/install-deps.sh"; exit 1; }; done
  mkdir -p "$RUN"
  certs
  mkdir -p "$RUN/minio-data" "$RUN/minio-tls-data" "$RUN/minio-region-data" "$RUN/vgw-data" "$RUN/vgw-iam"
  MINIO_ROOT_USER=$ROOT_USER MINIO_ROOT_PASSWORD=$ROOT_PASS MINIO_BROWSER=off \
    start_bg minio "$BIN/minio" server "$RUN/minio-data" --address "127.0.0.1:$MINIO_PORT" --console-address 127.0.0.1:19001
  MINIO_ROOT_USER=$ROOT_USER MINIO_ROOT_PASSWORD=$ROOT_PASS MINIO_BROWSER=off \
    start_bg minio-tls "$BIN/minio" server "$RUN/minio-tls-data" --address "127.0.0.1:$MINIO_TLS_PORT" --console-address 127.0.0.1:19444 --certs-dir "$RUN/tls/minio"
  # a MinIO whose region is eu-west-3: requests signed for us-east-1 are refused with the region named
  MINIO_ROOT_USER=$ROOT_USER MINIO_ROOT_PASSWORD=$ROOT_PASS MINIO_BROWSER=off MINIO_SITE_REGION=eu-west-3 \
    start_bg minio-region "$BIN/minio" server "$RUN/minio-region-data" --address "127.0.0.1:$MINIO_REGION_PORT" --console-address 127.0.0.1:19201
  start_bg versitygw "$BIN/versitygw" --port "127.0.0.1:$VGW_PORT" --admin-port 127.0.0.1:17080 \
    --access "$VGW_USER" --secret "$VGW_PASS" --iam-dir "$RUN/vgw-iam" posix "$RUN/vgw-data"
  mkdir -p "$RUN/azurite" "$RUN/azurite-tls"
  start_bg azurite "$BIN/azurite-blob" --blobHost 127.0.0.1 --blobPort "$AZURITE_PORT" --location "$RUN/azurite" \
    --skipApiVersionCheck --loose --disableTelemetry --silent
  start_bg azurite-tls "$BIN/azurite-blob" --blobHost 127.0.0.1 --blobPort "$AZURITE_TLS_PORT" --location "$RUN/azurite-tls" \
    --skipApiVersionCheck --loose --disableTelemetry --silent --cert "$RUN/tls/minio/public.crt" --key "$RUN/tls/minio/private.key"
  start_bg fake-gcs "$BIN/fake-gcs-server" -scheme http -host 127.0.0.1 -port "$GCS_PORT" \
    -public-host "127.0.0.1:$GCS_PORT" -external-url "http://127.0.0.1:$GCS_PORT" -backend memory -log-level error
  wait_http "http://127.0.0.1:$MINIO_PORT/minio/health/live"
  wait_http "https://127.0.0.1:$MINIO_TLS_PORT/minio/health/live" --cacert "$RUN/tls/ca.crt"
  wait_http "http://127.0.0.1:$MINIO_REGION_PORT/minio/health/live"
  for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$VGW_PORT/" && break; sleep 0.2; done
  for _ in $(seq 1 150); do curl -s -o /dev/null "http://127.0.0.1:$AZURITE_PORT/" && break; sleep 0.2; done
  wait_http "http://127.0.0.1:$GCS_PORT/storage/v1/b"
  for _ in $(seq 1 150); do curl -s -o /dev/null --cacert "$RUN/tls/ca.crt" "https://127.0.0.1:$AZURITE_TLS_PORT/" && break; sleep 0.2; done

  MC_CONFIG_DIR="$RUN/mc" "$(dirname "$0")/minio-users.sh" "http://127.0.0.1:$MINIO_PORT" "$ROOT_USER" "$ROOT_PASS"

  cat >"$RUN/servers.env" <<ENV
MINIO_ENDPOINT=http://127.0.0.1:$MINIO_PORT
MINIO_TLS_ENDPOINT=https://127.0.0.1:$MINIO_TLS_PORT
MINIO_REGION_ENDPOINT=http://127.0.0.1:$MINIO_REGION_PORT
MINIO_REGION=eu-west-3
MINIO_ROOT_USER=$ROOT_USER
MINIO_ROOT_PASSWORD=$ROOT_PASS
TLS_CA=$RUN/tls/ca.crt
VERSITYGW_ENDPOINT=http://127.0.0.1:$VGW_PORT
VERSITYGW_ACCESS=$VGW_USER
VERSITYGW_SECRET=$VGW_PASS
AZURITE_ENDPOINT=http://127.0.0.1:$AZURITE_PORT
AZURITE_TLS_ENDPOINT=https://127.0.0.1:$AZURITE_TLS_PORT
AZURITE_ACCOUNT=$AZURITE_ACCOUNT
AZURITE_KEY=$AZURITE_KEY
GCS_EMULATOR_HOST=127.0.0.1:$GCS_PORT
ENV
  mount_barman
  start_kube
  log "ready: $RUN/servers.env"
}

stop() {
  local pids=()
  for f in "$RUN"/*.pid; do
    [ -f "$f" ] || continue
    pids+=("$(cat "$f")")
    kill "$(cat "$f")" 2>/dev/null || true
    rm -f "$f"
  done
  # wait until they are gone (ports free); SIGKILL what is still there after 5 s
  for _ in $(seq 1 50); do
    alive=0
    for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break
    sleep 0.1
  done
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  umount_barman
  rm -rf "$RUN/servers.env" "$RUN/etcd"
  log "stopped"
}

case "${1:-}" in
start) start ;;
stop) stop ;;
env) cat "$RUN/servers.env" ;;
*) echo "usage: $0 start|stop|env" >&2; exit 2 ;;
esac
