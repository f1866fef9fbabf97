#!/usr/bin/env bash
# Creates the restricted MinIO users the permission scenarios use (read-only, no-delete,
# prefix-scoped), with mc, on a MinIO at ENDPOINT. Used by servers.sh and by the container mode.
# Usage: MC_CONFIG_DIR=DIR scripts/minio-users.sh ENDPOINT ROOT_USER ROOT_PASSWORD
set -euo pipefail
TOOLS=${CNPG_PREFLIGHT_TOOLS:-$HOME/.cache/cnpg-preflight/tools}
: "${MC_CONFIG_DIR:?set MC_CONFIG_DIR}"
export MC_CONFIG_DIR
mcx() { "$TOOLS/bin/mc" --quiet "$@"; }
policy() { # name json
  local f="$MC_CONFIG_DIR/policy-$1.json"
  mkdir -p "$MC_CONFIG_DIR"
  echo "$2" >"$f"
  mcx admin policy create local "$1" "$f" >/dev/null
}
user() { # name secret policy
  mcx admin user add local "$1" "$2" >/dev/null
  mcx admin policy attach local "$3" --user "$1" >/dev/null 2>&1 || true
}
mcx alias set local "$1" "$2" "$3" >/dev/null
policy preflight-readonly '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:GetObject","s3:ListBucket","s3:GetBucketLocation"],"Resource":["arn:aws:s3:::*"]}]}'
policy preflight-nodelete '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:GetObject","s3:PutObject","s3:ListBucket","s3:GetBucketLocation","s3:AbortMultipartUpload","s3:ListMultipartUploadParts","s3:ListBucketMultipartUploads"],"Resource":["arn:aws:s3:::*"]}]}'
policy preflight-prefixonly '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:ListBucket"],"Resource":["arn:aws:s3:::*"],"Condition":{"StringLike":{"s3:prefix":["scoped/*"]}}},{"Effect":"Allow","Action":["s3:GetObject","s3:PutObject","s3:DeleteObject","s3:AbortMultipartUpload","s3:ListMultipartUploadParts"],"Resource":["arn:aws:s3:::*/scoped/*"]}]}'
user ro-user ro-user-secret-0001 preflight-readonly
user nodelete-user nodelete-user-secret-0001 preflight-nodelete
user prefix-user prefix-user-secret-0001 preflight-prefixonly
