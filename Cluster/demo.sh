#!/usr/bin/env bash
# Installs what is missing, builds, and runs the main job on the built-in synthetic corpus.
# Output goes to ./demo (override with SER_DEMO_DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
Cluster/install-deps.sh
swift build -c release
exec .build/release/ser info --check
