#!/usr/bin/env bash
# Installs the system packages Misalign builds against, only those missing.
# A no-op (and no root needed) when everything is present.
set -euo pipefail
need=()
for pkg in libopenblas-dev libcurl4-openssl-dev libsqlite3-dev pkg-config; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
command -v swift >/dev/null || { echo "setup: swift (6.0 or newer) is not on PATH; install it from swift.org" >&2; exit 1; }
# Optional: Python's safetensors lets the test suite check files this library writes
# against the reference reader live. The suite also runs without it (committed fixtures).
if command -v python3 >/dev/null && ! python3 -c "import safetensors, numpy" 2>/dev/null; then
  python3 -m pip install -q safetensors numpy >/dev/null 2>&1 || echo "setup: python safetensors not installed (optional)"
fi
exit 0
