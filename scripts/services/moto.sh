#!/usr/bin/env bash
# The moto server (Kinesis, IoT Core data plane, SNS, S3 on one port) for tests and CI, and
# pyarrow beside it: the archive's tests read its Parquet files with a second implementation.
#   moto.sh fetch              create .cache/moto-venv once (idempotent)
#   moto.sh start PORT [HOST]  fetch if needed, then run the server in the foreground
# The versions are pinned so a new release cannot change what the tests see; the stamp names
# both, so a venv made before a bump is rebuilt.
set -euo pipefail
cd "$(dirname "$0")/../.."

MOTO_VERSION=5.1.22
# A cp311 manylinux_2_28 x86_64 wheel exists for it: no build from source.
PYARROW_VERSION=26.0.1
VENV=.cache/moto-venv
STAMP="$VENV/.moto-$MOTO_VERSION-pyarrow-$PYARROW_VERSION"

# Made and stamped, and still runnable: a venv's scripts name its Python by absolute path, so
# a checkout moved or copied elsewhere finds its venv broken and makes it again.
ready() { [ -f "$STAMP" ] && [ -x "$(sed -n '1s/^#!//p' "$VENV/bin/moto_server")" ]; }

fetch() {
  ready && return 0
  mkdir -p .cache
  # Test files may start moto side by side: one fetches, the others wait for it.
  (
    flock 9
    ready && exit 0
    # A half-made venv (an interrupted run) is rebuilt rather than trusted.
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check --only-binary pyarrow \
      "moto[server]==$MOTO_VERSION" "pyarrow==$PYARROW_VERSION"
    touch "$STAMP"
  ) 9>.cache/moto-venv.lock
}

case "${1:-}" in
  fetch) fetch ;;
  start)
    fetch
    exec "$VENV/bin/moto_server" -H "${3:-127.0.0.1}" -p "${2:?usage: moto.sh start PORT [HOST]}"
    ;;
  *)
    echo "usage: $0 fetch | start PORT [HOST]" >&2
    exit 2
    ;;
esac
