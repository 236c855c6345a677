#!/bin/bash
# Budget search for the checkpoints shipped with the package (Tasks issue): tiny MAE / MLM / GPT
# pretrained on sim with `benchbarcode pretrain` (the exact commands below) at batch 256, in
# parallel on one GPU, then every run scored next to the random-init controls
# (experiments/score_checkpoints.py: the package's open-world task with queries val_unseen and
# test_unseen, and its closed-world linear probe). Run from the repository root:
# bash experiments/checkpoint_search_gpu.sh
# Writes $OUT/search_rows.json, $OUT/logs.txt and the run directories as $OUT/runs_*.tar.
# Each training job is cut at $LIMIT s (a cut run leaves a resumable checkpoint that is still scored).
set -u
OUT=${OUT:-/tmp/out}; mkdir -p $OUT /tmp/runs; OUT=$(cd $OUT && pwd)  # absolute: scoring runs from /tmp/pkg
mkdir -p /tmp/pkg && cp -r benchbarcode /tmp/pkg/ && cp -r encoders /tmp/pkg/benchbarcode/encoders \
  && cp -r tasks /tmp/pkg/benchbarcode/tasks && cp -r experiments /tmp/pkg/
export PYTHONPATH=/tmp/pkg OMP_NUM_THREADS=1 PYTHONUNBUFFERED=1
LIMIT=${LIMIT:-360}; STEPS_SHORT=${STEPS_SHORT:-2500}; STEPS=${STEPS:-6000}; STEPS_LONG=${STEPS_LONG:-12000}
job() { name=$1; shift; start=$(date +%s)
  timeout $LIMIT python3 -m benchbarcode pretrain --data sim --quiet --batch-size 256 --warmup-steps 300 \
    --checkpoint-every 1000 --out /tmp/runs/$name "$@" > /tmp/runs/$name.log 2>&1
  echo "$name rc=$? $(( $(date +%s) - start ))s: $*" >> /tmp/runs/jobs.txt; }
job mae_m_$STEPS     --encoder mae --steps $STEPS --lr 5e-4 &
job mae_a_$STEPS     --encoder mae --steps $STEPS --lr 5e-4 --loss-on all &
job mae_m_lr1e3_$STEPS --encoder mae --steps $STEPS --lr 1e-3 &
job mae_m_r25_$STEPS --encoder mae --steps $STEPS --lr 5e-4 --mask-ratio 0.25 &
job mae_m_$STEPS_SHORT --encoder mae --steps $STEPS_SHORT --lr 5e-4 &
job mae_a_$STEPS_SHORT --encoder mae --steps $STEPS_SHORT --lr 5e-4 --loss-on all &
job mae_m_$STEPS_LONG --encoder mae --steps $STEPS_LONG --lr 5e-4 &
job mae_a_$STEPS_LONG --encoder mae --steps $STEPS_LONG --lr 5e-4 --loss-on all &
job mlm_m_$STEPS     --encoder mlm --steps $STEPS --lr 5e-4 &
job mlm_a_$STEPS     --encoder mlm --steps $STEPS --lr 5e-4 --loss-on all &
job mlm_m_$STEPS_SHORT --encoder mlm --steps $STEPS_SHORT --lr 5e-4 &
job gpt_$STEPS       --encoder gpt --steps $STEPS --lr 5e-4 &
job gpt_$STEPS_SHORT --encoder gpt --steps $STEPS_SHORT --lr 5e-4 &
wait
cat /tmp/runs/jobs.txt
# from /tmp/pkg, so that `benchbarcode` is the copy (with encoders/ and tasks/ inside), not ./benchbarcode
(cd /tmp/pkg && python3 -m experiments.score_checkpoints $(ls -d /tmp/runs/*/ | sort) --json $OUT/search_rows.json)
{ cat /tmp/runs/jobs.txt; for f in /tmp/runs/*.log; do echo "== $f"; tail -c 600 $f; done; } > $OUT/logs.txt
# at most 8 files of 16 MiB come back: five archives (<= 3 runs of ~4-5 MB each)
cd /tmp/runs && for g in "mae_m_[0-9]" "mae_a_" "mae_m_[lr]" "mlm_" "gpt_"; do
  tag=$(echo "$g" | tr -dc 'a-z_'); ls -d $g*/ >/dev/null 2>&1 \
    && tar czf $OUT/runs_${tag%_}.tgz --exclude=optimizer.pt $g*/; done
ls -la $OUT
