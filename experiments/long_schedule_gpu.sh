#!/bin/bash
# Long-schedule curves for the Encoders issue (experiments/pretraining-budgets.md, "What is left"),
# run in parallel on one GPU machine from the repository root (bash experiments/long_schedule_gpu.sh):
# tiny MAE and MLM with the loss on masked positions only (the papers) and on all positions, an MAE
# with a 2 x 128 decoder (its loss falls faster), and the causal GPT, one 10,000-step schedule each,
# scored every 2,000 steps next to the random-init control of the same seed. Runs the package and
# experiments/ from a copy under /tmp/pkg (no install needed) and writes $OUT/long_rows.json. Each
# job is cut at $LIMIT seconds.
set -u
mkdir -p /tmp/pkg /tmp/res && cp -r benchbarcode /tmp/pkg/ && cp -r encoders /tmp/pkg/benchbarcode/encoders && cp -r tasks /tmp/pkg/benchbarcode/tasks \
  && cp -r experiments /tmp/pkg/
export PYTHONPATH=/tmp/pkg OMP_NUM_THREADS=1 PYTHONUNBUFFERED=1
LIMIT=${LIMIT:-540}
# from /tmp/pkg, so that `benchbarcode` is the copy (with encoders/ and tasks/ inside), not ./benchbarcode
run() { name=$1; shift; (cd /tmp/pkg && timeout $LIMIT python3 -m experiments.long_schedule --data sim --steps 10000 \
        --eval-at 2000,4000,6000,8000 "$@" --json /tmp/res/$name.json > /tmp/res/$name.log 2>&1); echo "done $name rc=$?"; }
run mae_masked_s0 --objectives mae --set lr=5e-4,warmup_steps=200 &
run mae_all_s0    --objectives mae --set 'lr=5e-4,warmup_steps=200,loss_on="all"' &
run mae_all_s1    --objectives mae --set 'lr=5e-4,warmup_steps=200,loss_on="all"' --seed 1 &
run mlm_masked_s0 --objectives mlm --set lr=5e-4,warmup_steps=200 &
run mlm_all_s0    --objectives mlm --set 'lr=5e-4,warmup_steps=200,loss_on="all"' &
run mlm_all_s1    --objectives mlm --set 'lr=5e-4,warmup_steps=200,loss_on="all"' --seed 1 &
run mae_dec2_s0   --objectives mae --set 'lr=5e-4,warmup_steps=200,decoder={"decoder_layers":2,"decoder_hidden":128,"decoder_heads":4,"decoder_intermediate":512}' &
run gpt_s0        --objectives gpt --set lr=5e-4,warmup_steps=200 &
wait
python3 -m experiments.collect_rows /tmp/res $OUT/long_rows.json
for f in /tmp/res/*.log; do echo "== $f"; grep -v "Warn\|shards\|Loading" $f | tail -3 | cut -c1-300; done
