#!/usr/bin/env bash
# Make sure Debian's GPAW (with its PAW setups) is importable by /usr/bin/python3: the
# spin-orbit band-edge shifts (band_edges.soc: gpaw) run it in a subprocess. Installs
# gpaw + gpaw-data as root if missing.
set -euo pipefail
if /usr/bin/python3 -c "import gpaw" >/dev/null 2>&1; then
  echo "GPAW found: $(/usr/bin/python3 -c 'import gpaw; print(gpaw.__version__)')"
  exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
  echo "GPAW not found; installing Debian's gpaw and gpaw-data ..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq gpaw gpaw-data
else
  echo "GPAW not found. Install it (needs root), then rerun make:" >&2
  echo "  sudo apt-get install -y gpaw gpaw-data" >&2
  exit 1
fi
