#!/usr/bin/env bash
# The paper's scale on this machine: a synthetic store of ≥ 140k GDS-kept segments (the paper:
# 165,240 before GDS, ~140k after), preprocessed with 2 ranks and trained for one epoch of fusion-v1
# with 2 ranks, each streaming from its own shards. A store a tenth of the size is trained too, so the
# two peak resident memories show that memory does not grow with the store.
#
#   Cluster/bench/paper-scale.sh [DIR]        (default DIR: ./paper-scale; needs ~12 GB of disk)
#
# Environment: FILES_PER_CLASS (default 2200: 8,800 files of 10 s, ~167k segments before GDS),
# SMALL_FILES_PER_CLASS (default 220), RANKS (default 2), EPOCHS (default 1), MAX_STEPS (stop each
# training after this many steps instead: a quick look at speed and memory, not the epoch).
# Prints the figures BENCHMARKS.md records; everything else is in DIR/*.log.
set -euo pipefail
cd "$(dirname "$0")/../.."
dir=${1:-paper-scale}
files=${FILES_PER_CLASS:-2200}
small=${SMALL_FILES_PER_CLASS:-220}
ranks=${RANKS:-2}
epochs=${EPOCHS:-1}
ser=${SER_BINARY:-.build/release/ser}
[[ -x $ser ]] || swift build -c release
mkdir -p "$dir"

stage() { # name, command…: runs it, logs it, prints its wall time
  local name=$1; shift
  local t0=$SECONDS
  echo "== $name: $*"
  "$@" > "$dir/$name.log" 2>&1 || { echo "$name failed; see $dir/$name.log" >&2; tail -20 "$dir/$name.log" >&2; exit 1; }
  echo "   $name took $((SECONDS - t0)) s"
}

for size in big small; do
  n=$files; [[ $size == small ]] && n=$small
  if [[ ! -e $dir/$size-corpus/manifest.csv && ! -e $dir/$size-store/manifest.json ]]; then
    stage "$size-synth" "$ser" synth --out "$dir/$size-corpus" --files-per-class "$n" --duration 10 --speakers 24 --quiet
  fi
  if [[ ! -e $dir/$size-store/manifest.json ]]; then
    stage "$size-preprocess" Cluster/ser-mpirun --np "$ranks" -- ser preprocess --corpus "synth:$dir/$size-corpus" \
      --out "$dir/$size-store" --shards 32 --quiet
  fi
  rm -rf "$dir/$size-run"
  limit=(); [[ -n ${MAX_STEPS:-} ]] && limit=(--max-steps "$MAX_STEPS")
  stage "$size-train" "$ser" train --features "$dir/$size-store" --out "$dir/$size-run" --epochs "$epochs" --ranks "$ranks" "${limit[@]}"
done

echo
for size in big small; do
  python3 - "$dir/$size-store/manifest.json" "$dir/$size-run/metrics.jsonl" "$dir/$size-train.log" "$size" <<'EOF'
import json, os, re, sys
manifest, metrics, log, size = sys.argv[1:]
m = json.load(open(manifest)); g = m["gdsTotals"]
text = open(log).read()
rss = re.findall(r"peak resident memory (\d+) MB", text)
line = f"{size}: {len(m['files'])} files, segments {g['segmentsBefore']} before GDS, {g['segmentsAfter']} after"
if os.path.exists(metrics) and os.path.getsize(metrics) > 0:
    e = json.loads(open(metrics).readline())
    line += (f"; epoch 1: {e['train_segments']} training segments in {e['train_seconds']:.0f} s "
             f"({e['segments_per_second']:.1f} segments/s)")
else:
    steps = re.findall(r"stopped at step (\d+)", text)
    line += f"; stopped after {steps[-1] if steps else '?'} steps (--max-steps)"
print(line + f", peak resident memory {rss[-1] if rss else '?'} MB (largest rank)")
EOF
done
