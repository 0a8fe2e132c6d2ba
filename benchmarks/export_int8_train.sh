#!/usr/bin/env bash
# The three small models that benchmarks/export_int8.py exports and quantizes: trained one after
# the other at one thread, each for a fixed wall-clock budget (--minutes), on this machine.
# Usage: bash benchmarks/export_int8_train.sh [RUNS_DIR]   (default runs/export-int8)
set -euo pipefail
RUNS=${1:-runs/export-int8}
RNNLAB=(python -m rnnlab.cli.main)
mkdir -p "$RUNS"
"${RNNLAB[@]}" train classify --corpus sst2 --embedding-size 100 --hidden 64 --minutes 4 \
    --eval-every 200 --threads 1 --quiet --run-dir "$RUNS/sst2"
"${RNNLAB[@]}" train tag --corpus conll2003 --crf --char-features lstm --scheme bio \
    --word-embedding-size 50 --hidden 64 --minutes 5 --eval-every 300 --threads 1 --quiet \
    --run-dir "$RUNS/conll2003"
"${RNNLAB[@]}" train lm --corpus ptb --hidden 256 --layers 1 --bptt 35 --batch-size 20 \
    --dropout 0.3 --minutes 5 --eval-every 300 --threads 1 --quiet --run-dir "$RUNS/ptb"
