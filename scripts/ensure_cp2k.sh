#!/usr/bin/env bash
# Make sure a CP2K binary is available; install Debian's cp2k + cp2k-data as root if not.
set -euo pipefail
for exe in cp2k.psmp cp2k.popt cp2k; do
  if command -v "$exe" >/dev/null 2>&1; then
    echo "CP2K found: $(command -v "$exe")"
    exit 0
  fi
done
cmd="apt-get update && apt-get install -y cp2k cp2k-data"
if [ "$(id -u)" -eq 0 ]; then
  echo "No CP2K binary found; installing Debian's cp2k and cp2k-data ..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq cp2k cp2k-data
else
  echo "No CP2K binary found. Install it (needs root), then rerun make:" >&2
  echo "  sudo sh -c '$cmd'" >&2
  exit 1
fi
