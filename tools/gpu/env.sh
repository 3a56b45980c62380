# Sourced at the start of every call on a lent GPU machine, in the repository root (docs/TRAINING.md,
# "Training elsewhere"). The carried folder .gpu/ (ignored by git) holds: common/ (the warm-start tagger
# folder init/ and the platformdirs wheel; carried once, copied to /tmp/common) and p1/, p2/, … (the
# xz-compressed files of a distillation bundle, one share per call). Everything unpacked stays in /tmp
# while the machine is warm, so a bundle larger than one call's carry limit arrives over several calls.
if [ -d .gpu/common ]; then mkdir -p /tmp/common && cp -r .gpu/common/. /tmp/common/; fi
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site \
    /tmp/common/platformdirs-*.whl >/dev/null 2>&1
export PYTHONPATH=/tmp/site:$PWD ENCOTAG_HOME=/tmp/eh PYTHONUNBUFFERED=1
mkdir -p /tmp/b
for f in .gpu/p*/*.xz; do
    [ -f "$f" ] || continue
    t=/tmp/b/$(basename "$f" .xz)
    [ -f "$t" ] || python3 -c "import lzma, os, shutil, sys
with lzma.open(sys.argv[1]) as src, open(sys.argv[2] + '.tmp', 'wb') as dst:
    shutil.copyfileobj(src, dst)
os.replace(sys.argv[2] + '.tmp', sys.argv[2])" "$f" "$t"
done
echo "staged: $(ls /tmp/b | wc -l) files, $(du -sm /tmp/b | cut -f1) MB"
