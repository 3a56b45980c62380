#!/usr/bin/env bash
# Rebuild the shipped pack's training corpus (issue #24, "third build" and its growths) in one command.
#
#   tools/rebuild-corpus.sh CORPUS SNAPSHOTS
#
# CORPUS: the corpus folder to build or grow (e.g. /work/corpus3); SNAPSHOTS: the folder written by
# `encotag corpus snapshot` from the repositories of models/training/corpus_snapshots.py (see
# docs/CORPUS.md, "Repository snapshots"); the Debian packages of docs/CORPUS.md must be installed.
# It runs the build commands of docs/CORPUS.md in the order they first ran (the third build, then the
# growths of sessions 19 to 24), each limited to the sources known when it ran, so the make-up of
# every round matches the documented corpus (not clip for clip: a round's plan depends on the sources and
# packages found). Resumable: run it again and finished units are skipped.
set -euo pipefail
[[ $# -eq 2 ]] || { echo "usage: $0 CORPUS SNAPSHOTS" >&2; exit 2; }
C=$1
SN=$2
E=${ENCOTAG:-encotag}
S19=maad-soundscape,relaxing-sounds,lugaru-sfx,opensoundscape-field,regional-weather,ambient-engine,bucklespring-keys,avianz-kiwi,micropolis-sfx
S21=voxelibre-sfx,minetest-game-sfx,horse-pulse,splendid-piano,black-green-guitars
S21B=doggy-daycare,max-audio-samples,bird-whizz
S23=noixer,soundscape-examples,adafruit-sounds
S24=ambienzzz,ambie
with_aug() { echo "$1,$(echo "$1" | sed 's/,/+aug,/g')+aug"; }
later="$(with_aug $S19),$(with_aug $S21),$(with_aug $S21B),$(with_aug $S23),$(with_aug $S24),bucklespring-keys+train,ufoai-sfx"
# every source that can run here, less the ones added after the third build
first=$("$E" corpus build --out "$C" --snapshots "$SN" --stretch 2 --mix --list-sources 2>/dev/null |
    awk '$NF == "ok" { print $1 }' | grep -v -x -F -f <(echo "$later" | tr , '\n') | paste -sd,)

# exit status 1: the round ended short of its --hours (a source with fewer files than when it first ran);
# the later rounds still run, the summary says what was built; any other failure stops the script
build() {
    local rc=0
    "$E" corpus build --out "$C" --snapshots "$SN" --mix "$@" || rc=$?
    if [[ $rc -eq 1 ]]; then
        echo "rebuild-corpus: a round ended short of its target hours; going on" >&2
    elif [[ $rc -ne 0 ]]; then
        exit "$rc"
    fi
}
# the third build (session 17): three commands
build --stretch 1 --hours 24 --sources "$first" --max-hours-per-source 1 \
    --domain-weights environment=4,speech=1,music=1 --source-cap berklee=3.5 --source-cap berklee+aug=3 \
    --source-cap berklee-instruments+aug=1 --source-cap yellowstone+aug=1 --source-cap donateacry+aug=0.8 \
    --source-cap mix-real-events=1.5 --jobs 2
build --stretch 1 --sources berklee,berklee+aug --hours 5.3 --max-hours-per-source 2.6 --jobs 2
build --stretch 2 --hours 40.5 --sources "$first" --max-hours-per-source 1 \
    --domain-weights environment=6,speech=1,music=1 --source-cap berklee=3.6 --source-cap berklee+aug=5.4 \
    --source-cap berklee-instruments=1.1 --source-cap berklee-instruments+aug=1.2 \
    --source-cap yellowstone+aug=1.75 --source-cap donateacry+aug=1.65 --source-cap mix-real-events=3 --jobs 2
# session 19: nine repositories; session 20: typing trains and ufoai-sound
build --stretch 2 --sources "$(with_aug $S19)" --hours 1.65 --max-hours-per-source 1 --jobs 2
build --stretch 2 --sources bucklespring-keys+train --hours 0.5 --max-hours-per-source 1 --jobs 1
build --stretch 2 --sources ufoai-sfx --hours 0.5 --max-hours-per-source 1 --jobs 2
# session 21: VoxeLibre, minetest_game, three instrument libraries; then three small repositories
build --stretch 2 --sources "$(with_aug $S21)" --hours 3.2 --max-hours-per-source 1 \
    --source-cap horse-pulse+aug=0.3 --source-cap splendid-piano+aug=0.4 --source-cap black-green-guitars=0.5 \
    --source-cap black-green-guitars+aug=0.4 --jobs 2
build --stretch 2 --sources "$(with_aug $S21B)" --hours 1.5 --max-hours-per-source 1 --jobs 2
# session 23: three small repositories of recordings (noixer, soundscape examples, Adafruit)
build --stretch 2 --sources "$(with_aug $S23)" --hours 2 --max-hours-per-source 1 --jobs 2
# session 24: two ambient-sound apps with per-file credits (AmbienZZZzz, Ambie)
build --stretch 2 --sources "$(with_aug $S24)" --hours 1.5 --max-hours-per-source 1 --jobs 2
