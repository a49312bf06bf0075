#!/usr/bin/env bash
# Installs the Debian packages SERCluster needs, if any are missing (Debian 12 / Ubuntu 22.04+).
# Safe to run again: it only calls apt-get when something is absent.
#   --with-browser   also install chromium (used by the report test and screenshots)
set -euo pipefail

packages=(libopenmpi-dev openmpi-bin libopenblas-dev libfftw3-dev libsndfile1-dev libzstd-dev
          libsamplerate0-dev libpng-dev zstd iproute2 pkg-config)
for arg in "$@"; do
  case "$arg" in
    --with-browser) packages+=(chromium) ;;
    *) echo "install-deps.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
((${#missing[@]} == 0)) && exit 0

echo "Installing missing Debian packages: ${missing[*]}"
sudo=()
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "install-deps.sh: need root or sudo to install ${missing[*]}" >&2; exit 1; }
  sudo=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
