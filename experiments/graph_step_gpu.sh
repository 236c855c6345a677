#!/bin/bash
# The GPU checks of the graph-capturable step (issue 25), one script, from the repository root:
#   bash experiments/graph_step_gpu.sh            # on a GPU machine; rows under $OUT
#   REHEARSE=1 PYTHON=$PWD/.venv/bin/python OUT=/tmp/rehearsal bash experiments/graph_step_gpu.sh
#                                                 # the same calls on CPU, at tiny counts
# 1. Tokens/s and the GPU busy fraction (torch.profiler) of the pretraining step, eager against
#    torch.compile, bfloat16, `paper` and `tiny` presets, mae / mlm / gpt (experiments.step_throughput).
# 2. With the time left, the open science question: tiny MAE, MLM and GPT, seeds 0 and 1, compiled,
#    scored against their random-init controls at 10k / 30k / 100k steps of one schedule
#    (experiments.long_schedule) on sim and, where shared/ holds it, the BOLD file. Each job is cut
#    at $LIMIT seconds; what it scored by then is in its rows.
# Runs the package and experiments/ from a copy under /tmp/pkg (no install needed).
set -u
PY=${PYTHON:-python3}  # the interpreter that has torch (REHEARSE=1 PYTHON=.venv/bin/python ... here)
OUT=${OUT:-out}
mkdir -p "$OUT" /tmp/pkg /tmp/res && OUT=$(cd "$OUT" && pwd) && rm -f /tmp/res/* && cp -r benchbarcode /tmp/pkg/ && cp -r encoders /tmp/pkg/benchbarcode/encoders \
  && cp -r tasks /tmp/pkg/benchbarcode/tasks && cp -r experiments /tmp/pkg/
export PYTHONPATH=/tmp/pkg PYTHONUNBUFFERED=1
BOLD="$(pwd)/shared/data/bold_insects_coi5p.tsv.gz"
if [ "${REHEARSE:-0}" = 1 ]; then  # CPU: the same calls at tiny counts
  DEVICE=cpu; DTYPE=float32; PRESETS=tiny; TSTEPS=3; PSTEPS=0; BATCH="--batch-size 8"
  STEPS=40; EVAL_AT=10,20; LIMIT=${LIMIT:-300}; DATA_SIM=sim:4000; SEEDS="0"
else
  DEVICE=cuda; DTYPE=bfloat16; PRESETS=paper,tiny; TSTEPS=50; PSTEPS=10; BATCH=""
  STEPS=100000; EVAL_AT=10000,30000; LIMIT=${LIMIT:-240}; DATA_SIM=sim; SEEDS="0 1"
fi
cd /tmp/pkg
echo "== 1. step throughput ($DEVICE, $DTYPE)"
$PY -m experiments.step_throughput --device $DEVICE --dtype $DTYPE --presets $PRESETS --data $DATA_SIM \
  --objectives mae,mlm,gpt --steps $TSTEPS --profile-steps $PSTEPS $BATCH --json "$OUT/step_throughput.json" \
  | cut -c1-400
echo "== 2. pretraining against the random control, compiled"
run() { name=$1; shift; timeout $LIMIT $PY -m experiments.long_schedule --device $DEVICE --steps $STEPS \
        --eval-at $EVAL_AT --compile "$@" --json /tmp/res/$name.json > /tmp/res/$name.log 2>&1; echo "done $name rc=$?"; }
for seed in $SEEDS; do
  run sim_s$seed --data $DATA_SIM --objectives mae,mlm,gpt --seed $seed &
  if [ -f "$BOLD" ]; then run bold_s$seed --data "$BOLD" --objectives mae,mlm,gpt --seed $seed & fi
done
wait
$PY -m experiments.collect_rows /tmp/res "$OUT/control_rows.json"
for f in /tmp/res/*.log; do echo "== $f"; grep -v "Warn\|shards\|Loading" "$f" | tail -3 | cut -c1-300; done
