#!/usr/bin/env bash
# Installs what is missing, builds, and runs the main job on the built-in synthetic corpus:
# synthesise → preprocess with GDS → train fusion-v1 on 2 ranks → evaluate → explain a few files
# with Grad-CAM, LIME and occlusion → write the HTML report (its path is printed at the end).
# Output goes to ./demo (override with SER_DEMO_DIR); extra arguments go to `ser demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
Cluster/install-deps.sh
swift build -c release
exec .build/release/ser demo --out "${SER_DEMO_DIR:-demo}" "$@"
