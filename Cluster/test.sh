#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test (unit, golden, and real mpirun jobs).
# This is exactly what CI runs (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
Cluster/install-deps.sh --with-browser
# One release build of everything (ser and the tests); the tests then run without rebuilding.
swift build -c release --build-tests
swift test -c release --skip-build "$@"
