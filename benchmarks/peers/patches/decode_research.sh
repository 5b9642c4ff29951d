#!/usr/bin/env bash
# Patch a copy of forceworker/DECODE (commit a88c9d1) to run on CPU.
# Usage: bash patches/decode_research.sh SRC_DIR   (idempotent)
#  - remove the hard-coded `.cuda()` calls of model/stage2.py and model/utils.py (DECODE-REFERENCE.md §8 fault 12);
#    MBdeconv itself already falls back to the CPU, and the runner loads checkpoints with map_location="cpu".
# Nothing else is changed: the runner drives the notebook's steps (see run_decode_research.py).
set -euo pipefail
src="$1"
[ -f "$src/model/stage2.py" ] || { echo "not a DECODE checkout: $src" >&2; exit 1; }
sed -i 's/\.cuda()//g' "$src/model/stage2.py" "$src/model/utils.py"
n=$(cat "$src"/model/*.py | grep -o "\.cuda()" | wc -l || true)
echo "DECODE research code patched ($n .cuda() left)"
