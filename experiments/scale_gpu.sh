#!/bin/bash
# GPU checks of the scale issue (README, "The real BIOSCAN-5M on k GPUs"), one prepared run on one
# GPU machine, from the repository root: bash experiments/scale_gpu.sh
#   1. the BIOSCAN-5M-shaped twin end to end: benchbarcode run --encoder mae --data sim-large
#      (generate, read, pretrain the tiny preset, embed every evaluation split, all tasks) with
#      per-phase wall times from the log and the result files;
#   2. embedding and pretraining-step throughput of the mae/mlm presets (benchbarcode profile).
# Runs the package from a copy under /tmp/pkg (no install); umap-learn, pynndescent and edlib come
# as wheels from .whl/ (see experiments/README.md). Writes into $OUT: scale_gpu.log (everything),
# profiles.jsonl (one profile result per line), twin_results.tar.gz (the run's result files),
# twin_run.log. DATA, DEVICE and LIMIT override the defaults (a CPU rehearsal:
# NO_WHEELS=1 DATA=sim-large:20000 DEVICE=cpu OUT=/tmp/out bash experiments/scale_gpu.sh).
set -u
DATA=${DATA:-sim-large}
DEVICE=${DEVICE:-cuda}
LIMIT=${LIMIT:-450}  # seconds for the end-to-end run; each profile gets at most 60 s after it
mkdir -p /tmp/pkg /tmp/res "$OUT"
exec > >(tee "$OUT/scale_gpu.log") 2>&1
if [ -z "${NO_WHEELS:-}" ] && ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
fi
cp -r benchbarcode /tmp/pkg/ && cp -r encoders /tmp/pkg/benchbarcode/encoders && cp -r tasks /tmp/pkg/benchbarcode/tasks
export PYTHONPATH=/tmp/pkg:/tmp/site PYTHONUNBUFFERED=1 BENCHBARCODE_CACHE=/tmp/bbcache
cd /tmp/pkg
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null
python3 -c "import torch, os; print('torch', torch.__version__, 'cpus', len(os.sched_getaffinity(0)))"

echo "== 1. $DATA end to end on $DEVICE"
TIMER=$(command -v /usr/bin/time >/dev/null && echo "/usr/bin/time -v")  # peak memory, where it exists
start=$(date +%s.%N)
timeout "$LIMIT" $TIMER python3 -m benchbarcode run --encoder mae --data "$DATA" --device "$DEVICE" \
  --batch-size 1024 --results-dir /tmp/res 2> >(tr '\r' '\n' > "$OUT/twin_run.log")
echo "run rc=$? wall $(python3 -c "import time; print(round(time.time() - $start, 1))") s"
tar -czf "$OUT/twin_results.tar.gz" -C /tmp res
grep -E "sim-large|pretrain|embed|Maximum resident|Elapsed" "$OUT/twin_run.log" | grep -E "100%|Maximum|Elapsed" | tail -20

echo "== 2. profiles on $DEVICE"
profile() {  # the profile's own exit status (a timed-out one leaves no line)
  timeout 60 python3 -m benchbarcode profile --device "$DEVICE" --results-dir '' --json --quiet "$@" > /tmp/profile.json
  rc=$?
  python3 -c "import json, sys; print(json.dumps(json.load(open(sys.argv[1])), separators=(',', ':')))" /tmp/profile.json \
    >> "$OUT/profiles.jsonl" 2>/dev/null
  echo "profile $* rc=$rc"
}
profile --encoder mae --preset tiny --mode infer --dtype bfloat16 --batch-sizes 256,1024
profile --encoder mae --preset paper --mode infer --dtype bfloat16 --batch-sizes 256,1024
profile --encoder mae --preset paper --mode infer --dtype float32 --batch-sizes 256,1024
profile --encoder mae --preset paper --mode train --dtype bfloat16 --batch-sizes 64,256
profile --encoder mlm --preset paper --mode train --dtype bfloat16 --batch-sizes 64,256
echo "== done"
