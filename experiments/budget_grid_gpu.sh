#!/bin/bash
# The budget-vs-accuracy grid of experiments/pretraining-budgets.md, run in parallel on one GPU
# machine from the repository root: bash experiments/budget_grid_gpu.sh
# Needs the BOLD file at .devdata/bold_insects_coi5p.tsv.gz (a git-ignored folder: copy it from
# ../shared/data and carry it to the machine) and $OUT for the results; runs the package and
# experiments/ from a copy under /tmp/pkg (as python -m experiments.NAME from there) so that no
# install is needed. Each job is cut at $LIMIT seconds.
set -u
mkdir -p /tmp/pkg /tmp/res && cp -r benchbarcode /tmp/pkg/ && cp -r encoders /tmp/pkg/benchbarcode/encoders && cp -r tasks /tmp/pkg/benchbarcode/tasks \
  && cp -r experiments /tmp/pkg/
export PYTHONPATH=/tmp/pkg OMP_NUM_THREADS=1 PYTHONUNBUFFERED=1
BOLD=$PWD/.devdata/bold_insects_coi5p.tsv.gz
LIMIT=${LIMIT:-290}
# from /tmp/pkg, so that `benchbarcode` is the copy (with encoders/ and tasks/ inside), not ./benchbarcode
run() { name=$1; shift; (cd /tmp/pkg && timeout $LIMIT python3 -m experiments.budget_curve "$@" \
          --json /tmp/res/$name.json > /tmp/res/$name.log 2>&1); echo "done $name rc=$?"; }
S=250,1000,3000
for data in sim bold; do
  src=sim; [ $data = bold ] && src=$BOLD
  run ${data}_controls --data $src --objectives mae,gpt --steps "" &
  run ${data}_controls_k6 --data $src --objectives mae --steps "" --set k=6 &
  run ${data}_mae_lr3e-4 --data $src --objectives mae --steps $S --set lr=3e-4,warmup_steps=100 --no-controls &
  run ${data}_mae_lr1e-3 --data $src --objectives mae --steps $S --set lr=1e-3,warmup_steps=100 --no-controls &
  run ${data}_mae_k6 --data $src --objectives mae --steps $S --set lr=3e-4,warmup_steps=100,k=6 --no-controls &
  run ${data}_mlm_lr1e-4 --data $src --objectives mlm --steps $S --set lr=1e-4,warmup_steps=100 --no-controls &
  run ${data}_mlm_lr3e-4 --data $src --objectives mlm --steps $S --set lr=3e-4,warmup_steps=100 --no-controls &
  run ${data}_gpt_lr3e-4 --data $src --objectives gpt --steps $S --set lr=3e-4,warmup_steps=100 --no-controls &
  run ${data}_mae_small --data $src --objectives mae --preset small --steps 1000,3000 --no-controls &
done
wait
python3 - <<'PY' > $OUT/steptime.txt 2>&1
import time, torch
from benchbarcode.models.presets import get_preset
from benchbarcode.models import build_model, sample_mask
from benchbarcode.tokenizers import KmerTokenizer
import numpy as np
rng = np.random.default_rng(0)
seqs = ["".join(rng.choice(list("ACGT"), 658)) for _ in range(256)]
for obj, preset in [("mlm","paper"),("mae","paper"),("mae","paper-light")]:
    p = get_preset(obj, preset).with_overrides(k=6)
    torch.manual_seed(0); m = build_model(obj, p).cuda(); opt = torch.optim.AdamW(m.parameters(), lr=1e-4)
    ids, attn = KmerTokenizer(6)(seqs); ids, attn = torch.from_numpy(ids), torch.from_numpy(attn)
    mask = sample_mask(ids, attn, 0.5); ids, attn, mask = ids.cuda(), attn.cuda(), mask.cuda()
    for i in range(25):
        if i == 5: torch.cuda.synchronize(); t = time.perf_counter()
        with torch.autocast("cuda", dtype=torch.bfloat16): loss = m(ids, attn, mask)["loss"]
        opt.zero_grad(); loss.backward(); opt.step()
    torch.cuda.synchronize(); print(obj, preset, "k=6 batch 256 bf16: s/step", round((time.perf_counter()-t)/20, 4), flush=True)
PY
python3 -m experiments.collect_rows /tmp/res $OUT/all_rows.json
cat $OUT/steptime.txt
for f in /tmp/res/*.log; do echo "== $f"; grep -v "Warn\|shards\|Loading" $f | tail -4; done > $OUT/logs.txt
