#!/usr/bin/env bash
# Installs what the system and its tests need on a fresh Debian machine: the Mosquitto
# broker (interop tests and the gateway benchmark's peer), socat (serial tests), faketime
# (an agent booting with its clock at 1970), shellcheck and systemd-analyze (checks of
# the Raspberry Pi install kit), Chromium (console browser tests), the npm packages (better-sqlite3 builds
# from source with the machine's compiler), an Apache Kafka broker's jars from Maven
# Central and a moto server in a Python venv (both cached under .cache/).
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v mosquitto >/dev/null || missing+=(mosquitto)
command -v socat >/dev/null || missing+=(socat)
command -v shellcheck >/dev/null || missing+=(shellcheck)
command -v systemd-analyze >/dev/null || missing+=(systemd)
command -v faketime >/dev/null || missing+=(faketime)
command -v chromium >/dev/null || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: please install the Debian packages: ${missing[*]} (needs root)" >&2
    exit 1
  fi
  echo "setup: installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

npm ci --no-audit --no-fund
npm run build
bash scripts/services/kafka.sh fetch
bash scripts/services/moto.sh fetch
