#!/usr/bin/env bash
# Render docs/screenshot.png: the real Encotag window under Xvfb, live input fed from a file.
#
# Usage: tools/screenshot.sh [OUT.png]
#   ENCOTAG_SCREENSHOT_PACK   model pack folder (default: the shipped pack, else the teacher pack built
#                             from ../shared into a temporary folder)
#   ENCOTAG_SCREENSHOT_AUDIO  audio fed as live input (default: resources/examples/example.flac)
#   ENCOTAG_SCREENSHOT_THEME  light | dark (default: light)
#   ENCOTAG_SCREENSHOT_SETTINGS  settings.json the window starts with (default: the one below: the live
#                             spectrogram, three pinned tags, two of them with their own thresholds)
# Needs Xvfb (Debian: apt-get install -y xvfb xauth). User folders are redirected to a temporary
# ENCOTAG_HOME, so your own settings are never read or written.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
out="$(realpath -m "${1:-$repo/docs/screenshot.png}")"
cd "$repo"
py="${PYTHON:-$repo/.venv/bin/python}"
[ -x "$py" ] || py=python3
command -v xvfb-run >/dev/null || { echo "screenshot.sh: xvfb-run not found (apt-get install -y xvfb xauth)" >&2; exit 2; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export ENCOTAG_HOME="$work/home"

pack="${ENCOTAG_SCREENSHOT_PACK:-}"
if [ -z "$pack" ]; then
  if [ -f resources/packs/default/manifest.json ]; then
    pack=resources/packs/default
  else
    teacher="$repo/../shared/teachers/efficientat_mn04_as"
    [ -d "$teacher" ] || { echo "screenshot.sh: no default pack and no teacher at $teacher" >&2; exit 2; }
    "$py" -m app pack teacher --teacher "$teacher" --out "$work/teacher_pack" >/dev/null
    pack="$work/teacher_pack"
  fi
fi
audio="${ENCOTAG_SCREENSHOT_AUDIO:-resources/examples/example.flac}"
mkdir -p "$ENCOTAG_HOME/config"
if [ -n "${ENCOTAG_SCREENSHOT_SETTINGS:-}" ]; then
  cp "$ENCOTAG_SCREENSHOT_SETTINGS" "$ENCOTAG_HOME/config/settings.json"
else
  cat >"$ENCOTAG_HOME/config/settings.json" <<'JSON'
{"version": 1, "spectrogram": true, "threshold": 0.3,
 "selected_tags": ["Speech", "Speech synthesizer", "Music"],
 "tag_thresholds": {"Speech": 0.6, "Music": 0.15}}
JSON
fi

xvfb-run -a -s "-screen 0 1600x1000x24" \
  "$py" -m app gui --pack "$pack" --synthetic "$audio" --theme "${ENCOTAG_SCREENSHOT_THEME:-light}" \
  --screenshot "$out" --exit-after "${ENCOTAG_SCREENSHOT_SECONDS:-12}"
echo "wrote $out"
