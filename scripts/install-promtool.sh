#!/usr/bin/env bash
# Installs promtool and amtool (Debian's prometheus and
# prometheus-alertmanager packages) when missing: the alert rules' unit
# tests and the config checks in services/deploy-check run them. Only the
# tools are wanted, so no server is started.
set -euo pipefail

if command -v promtool >/dev/null && command -v amtool >/dev/null; then
  exit 0
fi
as_root=()
if [ "$(id -u)" -ne 0 ]; then
  as_root=(sudo)
fi
# Debian starts a package's service on install unless policy-rc.d says no.
no_start=/usr/sbin/policy-rc.d
if [ ! -e "$no_start" ]; then
  printf '#!/bin/sh\nexit 101\n' | "${as_root[@]}" tee "$no_start" >/dev/null
  "${as_root[@]}" chmod +x "$no_start"
  trap '"${as_root[@]}" rm -f "$no_start"' EXIT
fi
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" apt-get install -y -qq --no-install-recommends prometheus prometheus-alertmanager
promtool --version | head -1
