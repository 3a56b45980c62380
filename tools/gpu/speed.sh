# First call on a lent GPU machine (docs/TRAINING.md, "Training elsewhere"): bash tools/gpu/speed.sh
# Checks the GPU and the trainer, and measures seconds per step under the load of train.sh (ten runs at
# once) on a synthetic bundle of the real shapes; train.sh sizes its runs from /tmp/speed.txt.
. tools/gpu/env.sh
nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv,noheader
python3 - <<'PY'
import numpy as np
from models.training.bundle import write_bundle
from models.training.distill import DistillData
rng = np.random.default_rng(0); n = 1000
codes = rng.integers(0, 1024, (n, 1, 8, 750)).astype(np.int16)
seg = rng.normal(-6, 3, (n, 1, 5, 527)).astype(np.float16)
tab = rng.standard_normal((8, 1024, 128)).astype(np.float32)
w = np.ones((n, 5), np.float32)
write_bundle("/tmp/syn", DistillData(codes, seg.max(axis=2), seg, seg_weights=w), tab, {})
PY
c="--bundle /tmp/syn --init /tmp/common/init --device cuda --rank-kd 0.003 --lr 1e-3 --steps 300"
for k in 1 2 3 4 5 6 7 8 9; do python3 -m app -v train tagger $c --out /tmp/sp$k --width 0.4 --batch-size 32 --seed $k > /tmp/sp$k.log 2>&1 & done
python3 -m app -v train tagger $c --out /tmp/spw --width 0.6 --batch-size 64 > /tmp/spw.log 2>&1 &
wait
python3 - <<'PY'
import re
def rate(f):
    t = {int(m.group(1)): float(m.group(2)) for m in re.finditer(r"step=(\d+) .*?elapsed_s=([\d.e+-]+)", open(f).read())}
    return (t[300] - t[100]) / 200 if 300 in t and 100 in t else None
r4, r6 = rate("/tmp/sp1.log"), rate("/tmp/spw.log")
print(f"s/step under load: width 0.4 bs 32 {r4}, width 0.6 bs 64 {r6}")
if r4 and r6:
    open("/tmp/speed.txt", "w").write(f"{r4} {r6}\n")
PY
tail -2 /tmp/spw.log
