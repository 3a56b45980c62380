#!/usr/bin/env bash
# Set up Encotag on Debian/Ubuntu and launch it.  Idempotent: run it again any time.
#
#   ./tools/setup.sh [encotag arguments…]     install what is missing, then start the app
#
# Steps (each skipped when already done):
#   1. system packages (PortAudio, libsndfile, Qt's xcb/EGL/fontconfig libraries) via apt-get,
#      as root or through sudo;
#   2. a virtual environment in .venv (Python >= 3.11; $PYTHON picks the interpreter);
#   3. the CPU build of torch, pinned ($TORCH_SPEC, default torch==2.13.0+cpu): first from the
#      configured package sources, else from the PyTorch CPU index;
#   4. Encotag itself, editable, with the extras in $ENCOTAG_EXTRAS (e.g. "test");
#   5. `encotag "$@"` (skipped with ENCOTAG_NO_LAUNCH=1).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

VENV="${ENCOTAG_VENV:-$ROOT/.venv}"
TORCH_SPEC="${TORCH_SPEC:-torch==2.13.0+cpu}"
TORCH_CPU_INDEX="${TORCH_CPU_INDEX:-https://download.pytorch.org/whl/cpu}"
EXTRAS="${ENCOTAG_EXTRAS:-}"
NO_LAUNCH="${ENCOTAG_NO_LAUNCH:-0}"

say() { printf '[setup] %s\n' "$*" >&2; }
die() { printf '[setup] error: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- 1. system packages
APT_PACKAGES=(
    libportaudio2 libsndfile1
    libglib2.0-0 libdbus-1-3 libfontconfig1 libfreetype6 libegl1 libgl1 libopengl0
    libx11-xcb1 libxkbcommon0 libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1
    libxcb-shape0 libxcb-xinerama0 libxcb-randr0 libxcb-render-util0 libxcb-image0 libxcb-xkb1
)
if [[ " $EXTRAS " == *" test "* || ",$EXTRAS," == *",test,"* ]]; then
    APT_PACKAGES+=(xvfb xauth)
    # tests/test_gui_portaudio.py: a private PulseAudio null sink as a real PortAudio input/output
    APT_PACKAGES+=(pulseaudio pulseaudio-utils libasound2-plugins)
    # tests/test_corpus.py, tests/test_eval.py: MIDI rendering (fluidsynth + the FluidR3 GM soundfont)
    # and synthetic speech (espeak-ng) for the corpus and pitch-task tests
    APT_PACKAGES+=(fluidsynth fluid-soundfont-gm espeak-ng)
fi

PY="${PYTHON:-}"
if [[ -z "$PY" ]]; then
    for candidate in python3.11 python3.12 python3.13 python3; do
        if command -v "$candidate" >/dev/null 2>&1; then PY="$candidate"; break; fi
    done
fi

missing_packages() {
    local pkg
    for pkg in "$@"; do
        if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
            # Ubuntu >= 24.04 renamed some libraries (libglib2.0-0t64); accept the t64 variant.
            if ! dpkg-query -W -f='${Status}' "${pkg}t64" 2>/dev/null | grep -q "install ok installed"; then
                printf '%s\n' "$pkg"
            fi
        fi
    done
}

if command -v dpkg-query >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
    needed=("${APT_PACKAGES[@]}")
    if [[ -z "$PY" ]]; then
        needed+=(python3 python3-venv)
    elif ! "$PY" -c "import ensurepip, venv" >/dev/null 2>&1; then
        needed+=(python3-venv)  # Debian's system Python ships venv/ensurepip separately
    fi
    mapfile -t missing < <(missing_packages "${needed[@]}")
    if ((${#missing[@]})); then
        say "installing system packages: ${missing[*]}"
        SUDO=()
        if [[ $(id -u) -ne 0 ]]; then
            command -v sudo >/dev/null 2>&1 || die "not root and no sudo: install ${missing[*]} yourself"
            SUDO=(sudo)
        fi
        export DEBIAN_FRONTEND=noninteractive
        if [[ "${ENCOTAG_APT_UPDATED:-0}" != "1" ]]; then
            "${SUDO[@]}" apt-get update -qq
        fi
        "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    else
        say "system packages present"
    fi
else
    say "no apt-get/dpkg here: make sure PortAudio, libsndfile and Qt's xcb libraries are installed"
fi

# ---------------------------------------------------------------- 2. virtual environment
[[ -n "$PY" ]] || PY=python3
command -v "$PY" >/dev/null 2>&1 || die "no Python 3 interpreter found (set PYTHON=…)"
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || die "$PY is older than Python 3.11"

if [[ -x "$VENV/bin/python" ]] && "$VENV/bin/python" -c "import pip" >/dev/null 2>&1; then
    say "virtual environment $VENV present"
else
    say "creating virtual environment $VENV with $("$PY" --version)"
    rm -rf "$VENV"
    "$PY" -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
fi
VPY="$VENV/bin/python"
PIP=("$VPY" -m pip install -q --disable-pip-version-check)

# ---------------------------------------------------------------- 3. CPU torch
torch_version="${TORCH_SPEC#*==}"
if "$VPY" -c "import sys, torch; sys.exit(torch.__version__ != '$torch_version')" >/dev/null 2>&1; then
    say "torch $torch_version present"
else
    say "installing $TORCH_SPEC (CPU build)"
    if ! "${PIP[@]}" "$TORCH_SPEC" 2>/dev/null; then
        say "not in the configured package sources; trying $TORCH_CPU_INDEX"
        "${PIP[@]}" "$TORCH_SPEC" --index-url "$TORCH_CPU_INDEX" --extra-index-url https://pypi.org/simple
    fi
fi

# ---------------------------------------------------------------- 4. Encotag
target="."
if [[ -n "$EXTRAS" ]]; then target=".[${EXTRAS// /,}]"; fi
# The stamp records what was installed (pyproject hash, checkout, extras); a later run asking for the
# same or fewer extras skips pip.
stamp="$VENV/.encotag-install"
key="$(sha256sum pyproject.toml | cut -d' ' -f1) $ROOT"
installed_ok=0
if [[ -f "$stamp" && "$(head -n 1 "$stamp")" == "$key" ]] && "$VPY" -c "import importlib.metadata as m; m.version('encotag')" >/dev/null 2>&1; then
    installed_ok=1
    for extra in ${EXTRAS//,/ }; do
        grep -qx "extra $extra" "$stamp" || installed_ok=0
    done
fi
if [[ $installed_ok == 1 ]]; then
    say "encotag ${target} already installed"
else
    say "installing encotag (editable) ${target}"
    "${PIP[@]}" -e "$target"
    previous=""
    if [[ -f "$stamp" && "$(head -n 1 "$stamp")" == "$key" ]]; then previous="$(tail -n +2 "$stamp")"; fi
    {
        echo "$key"
        printf '%s\n' "$previous"
        for extra in ${EXTRAS//,/ }; do echo "extra $extra"; done
    } | grep -v '^$' | awk '!seen[$0]++' >"$stamp"
fi

# ---------------------------------------------------------------- 5. launch
if [[ "$NO_LAUNCH" == "1" ]]; then
    say "ready: $VENV/bin/encotag"
    exit 0
fi
if [[ -z "${DISPLAY:-}${WAYLAND_DISPLAY:-}" && -z "${QT_QPA_PLATFORM:-}" ]]; then
    say "no DISPLAY or WAYLAND_DISPLAY: the window needs a desktop session (or QT_QPA_PLATFORM=offscreen)"
fi
say "launching encotag $*"
exec "$VENV/bin/encotag" "$@"
