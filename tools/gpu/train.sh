# Last call on a lent GPU machine: NFILES=<files in the bundle> [BUDGET=seconds] bash tools/gpu/train.sh
# With the bundle complete in /tmp/b (tools/gpu/env.sh): eight seeds of session 27's x1 recipe and three
# long runs, in parallel, sized from speed.sh's measurement to end within BUDGET seconds; the tagger
# folders come back in four tar files under $OUT (the run tool's output folder).
. tools/gpu/env.sh
[ -f /tmp/b/bundle.json ] && [ "$(ls /tmp/b | wc -l)" -eq "${NFILES:?}" ] || { echo "bundle incomplete: $(ls /tmp/b | wc -l) of $NFILES"; exit 3; }
read r4 r6 < /tmp/speed.txt || { echo "no speed measurement"; exit 3; }
BUDGET=${BUDGET:-380}
S=$(python3 -c "print(min(5000, int($BUDGET / $r4)))")
L=$(python3 -c "print(max(5000, min(30000, int($BUDGET / ($r6 * 1.05)) // 500 * 500)))")
echo "seed runs $S steps, long runs $L steps"
R=/tmp/r; mkdir -p $R
c="--bundle /tmp/b --init /tmp/common/init --device cuda --rank-kd 0.003 --eval-augs 0"
run() { n=$1; shift; python3 -m app -v train tagger $c --out $R/$n "$@" > $R/$n.log 2>&1; echo "$n rc=$?"; }
for s in 0 1 2 3 4 5 6 7; do run x$s --width 0.4 --steps $S --lr 1e-3 --batch-size 32 --seed $s & done
run long04 --width 0.4 --steps $L --lr 1e-3 --batch-size 64 --seed 10 &
run long06 --width 0.6 --steps $L --lr 8e-4 --batch-size 64 --seed 11 &
run long04s --width 0.4 --steps $L --lr 1e-3 --batch-size 64 --seed 12 &
wait
cd $R
for n in x0 x1 x2 x3 x4 x5 x6 x7 long04 long06 long04s; do grep -h "step=" $n.log | tail -1 | sed "s/^/$n /"; rm -f $n/tagger_ckpt.safetensors; done > $OUT/steps.txt
tail -n 4 *.log > $OUT/logs.txt
tar cf $OUT/a.tar x0 x1 x2; tar cf $OUT/b.tar x3 x4 x5; tar cf $OUT/c.tar x6 x7 long04; tar cf $OUT/d.tar long06 long04s
ls -la $OUT; cat $OUT/steps.txt
