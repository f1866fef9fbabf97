#!/usr/bin/env bash
# Installs (Debian's docker.io) and starts a private Docker engine for the container mode of the
# tests, or stops it. Prints the DOCKER_HOST to use on success; exits non-zero when no engine
# can be started (the tests then run their servers as processes).
# Usage: scripts/docker.sh start|stop
set -uo pipefail
D=${CNPG_PREFLIGHT_DOCKER_DIR:-/tmp/cnpg-preflight-docker}
SOCK=unix://$D/docker.sock
log() { echo "docker: $*" >&2; }
case "${1:-}" in
start)
  if ! command -v dockerd >/dev/null; then
    log "installing docker.io (apt)"
    export DEBIAN_FRONTEND=noninteractive
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends docker.io; } >/dev/null 2>&1 || { log "cannot install docker.io"; exit 1; }
  fi
  mkdir -p "$D/root" "$D/exec"
  if ! DOCKER_HOST=$SOCK docker version >/dev/null 2>&1; then
    nohup dockerd --data-root "$D/root" --exec-root "$D/exec" -H "$SOCK" --pidfile "$D/docker.pid" >"$D/dockerd.log" 2>&1 &
    for _ in $(seq 1 100); do DOCKER_HOST=$SOCK docker version >/dev/null 2>&1 && break; sleep 0.2; done
  fi
  if ! DOCKER_HOST=$SOCK docker version >/dev/null 2>&1; then
    log "the engine did not start (see $D/dockerd.log)"; exit 1
  fi
  echo "$SOCK" ;;
stop)
  if [ -f "$D/docker.pid" ]; then
    kill "$(cat "$D/docker.pid")" 2>/dev/null
    for _ in $(seq 1 100); do kill -0 "$(cat "$D/docker.pid")" 2>/dev/null || break; sleep 0.1; done
  fi
  log "stopped" ;;
*) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
