#!/usr/bin/env bash
# Rebuild everything the default pack's training reads, on a fresh machine, in one command (issue #24):
#
#   tools/rebuild-training-data.sh MIRRORS SNAPSHOTS CORPUS
#
# MIRRORS: the folder of bare git directories of the 41 repositories of
#   models/training/corpus_snapshots.py (MIRRORS/<owner>+<name>/repo, as the search tool's `fetch` leaves
#   them); SNAPSHOTS: the folder `encotag corpus snapshot` writes; CORPUS: the corpus folder (e.g.
#   /work/corpus3). The 35 % re-split (/work/corpus3w) is one more command on top: docs/TRAINING.md.
# The Debian packages of docs/CORPUS.md ("Setting up a fresh machine") must be installed and the app set
# up with the train extra (ENCOTAG_EXTRAS=train ./tools/setup.sh).
#
# Steps, each resumable (run the script again and finished work is skipped):
#   1. snapshots of the repositories (every snapshot's commit is recorded in SNAPSHOT.json);
#   2. the corpus: tools/rebuild-corpus.sh (the documented build rounds, in order);
#   3. the caches: teacher logits of every 2-s segment, then codec codes of every clip, by two workers
#      working from both ends (`encotag train features --per-clip [--reverse]`, one thread each).
# Logs go to CORPUS.logs/. Session 29 (2 cores): snapshots 2 min, corpus 11 min, caches 90 min.
set -euo pipefail
[[ $# -eq 3 ]] || { echo "usage: $0 MIRRORS SNAPSHOTS CORPUS" >&2; exit 2; }
MIRRORS=$1
SN=$2
C=$3
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
E=${ENCOTAG:-encotag}
T=${TEACHER:-$ROOT/../shared/teachers/efficientat_mn04_as}
LOGS="$C.logs"
mkdir -p "$LOGS"
stamp() { printf '[rebuild %s] %s\n' "$(date -u +%H:%M:%S)" "$*"; }
trap 'echo "rebuild-training-data: a step failed (exit status $?); its log is in $LOGS/" >&2' ERR

repos=()
# a mirror is a bare git directory, MIRRORS/<owner>+<name>/repo or (as fetch leaves some) …/repo/.git
for d in "$MIRRORS"/*/repo; do
    if [[ -f "$d/.git/HEAD" && ! -f "$d/HEAD" ]]; then d="$d/.git"; fi
    repos+=("$d")
done
[[ ${#repos[@]} -gt 0 ]] || { echo "no repositories under $MIRRORS (expected MIRRORS/<owner>+<name>/repo)" >&2; exit 2; }
stamp "1. snapshots of ${#repos[@]} repositories -> $SN"
"$E" corpus snapshot "${repos[@]}" --out "$SN" >"$LOGS/snapshot.log" 2>&1

stamp "2. corpus -> $C"
ENCOTAG="$E" "$ROOT/tools/rebuild-corpus.sh" "$C" "$SN" >"$LOGS/corpus.log" 2>&1

stamp "3. teacher logits and codec codes (two workers)"
feat=(-v train features --per-clip --corpus "$C" --codec "$ROOT/resources/packs/default" --teacher "$T"
    --out "$C.feat" --threads 1)
"$E" "${feat[@]}" >"$LOGS/features.log" 2>&1 &
fwd=$!
"$E" "${feat[@]}" --reverse >"$LOGS/features-reverse.log" 2>&1 &
rev=$!
rc=0
wait "$fwd" || rc=$?
wait "$rev" || rc=$?
# the two workers meet in the middle; one more pass finds anything either left undone
[[ $rc -eq 0 ]] || { echo "a features worker failed (see $LOGS)" >&2; exit "$rc"; }
"$E" "${feat[@]}" >>"$LOGS/features.log" 2>&1
stamp "done"
