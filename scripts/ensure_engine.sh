#!/usr/bin/env bash
# Make sure an engine from Debian is installed; install it with apt-get as root if not.
#   ensure_engine.sh cp2k   CP2K (cp2k + cp2k-data): the embedded DFT engine
#   ensure_engine.sh gpaw   GPAW for /usr/bin/python3 (gpaw + gpaw-data): spin-orbit band edges
set -euo pipefail
case "${1:-}" in
  cp2k)
    found() { for exe in cp2k.psmp cp2k.popt cp2k; do command -v "$exe" && return 0; done; return 1; }
    packages="cp2k cp2k-data" ;;
  gpaw)
    found() { /usr/bin/python3 -c "import gpaw; print('gpaw', gpaw.__version__)" 2>/dev/null; }
    packages="gpaw gpaw-data" ;;
  *)
    echo "usage: $0 cp2k|gpaw" >&2
    exit 2 ;;
esac
if where=$(found); then
  echo "$1 found: $where"
  exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
  echo "$1 not found; installing Debian's $packages ..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq $packages
else
  echo "$1 not found. Install it (needs root), then rerun make:" >&2
  echo "  sudo sh -c 'apt-get update && apt-get install -y $packages'" >&2
  exit 1
fi
