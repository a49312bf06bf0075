#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test (unit, golden, and real mpirun jobs).
# This is exactly what CI runs (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
Cluster/install-deps.sh --with-browser
swift build -c release
swift test -c release "$@"
