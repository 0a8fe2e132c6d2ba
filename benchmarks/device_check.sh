#!/usr/bin/env bash
# The checks that need a GPU, as one run on a lent device machine (issue 21: the layers against
# cuDNN, report only; and the CUDA path of every layer and task, tests/test_cuda.py):
#
#     device run:  bash benchmarks/device_check.sh        (timeout_s 540)
#
# The device image holds torch with CUDA, pytest and hypothesis; rnnlab runs from src/ with no
# install. Writes to $OUT (what comes back): env.txt, test_cuda.log, recurrent_speed_cuda.{md,json,log}.
# Configs (e) and (f) read ../shared/data, which does not travel, so the GPU run times (a)-(d).
# conllu and seqeval (the tagging commands' readers and scorer) are not in the image: tests
# that need them fail there unless they travel as wheels (.library/device/README.md).
set -uo pipefail
OUT=${OUT:-/tmp/device_check}
mkdir -p "$OUT"
export PYTHONPATH=src PYTHONUNBUFFERED=1
{ nvidia-smi; python3 -c "import torch; print(torch.__version__, torch.cuda.get_device_name())"; } \
    > "$OUT/env.txt" 2>&1
# -rA lists every test's outcome, so a failure list comes back whole
timeout 200 python3 -m pytest -q -rA -p no:cacheprovider tests/test_cuda.py > "$OUT/test_cuda.log" 2>&1
echo "tests/test_cuda.py: exit $?; $(tail -1 "$OUT/test_cuda.log")"
timeout 300 python3 benchmarks/recurrent_speed.py --device cuda --configs abcd --repeats 3 \
    --budget 200 --output "$OUT/recurrent_speed_cuda" > "$OUT/recurrent_speed_cuda.log" 2>&1
echo "recurrent_speed --device cuda: exit $?"
grep -E "fused|torch" "$OUT/recurrent_speed_cuda.md" | cut -d'|' -f2,3,6,9
