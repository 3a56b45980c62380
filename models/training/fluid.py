"""Music from generated MIDI rendered by fluidsynth with the FluidR3 General MIDI soundfont.

A tiny standard-MIDI-file writer (format 0, fixed 120 bpm at 480 ticks per beat, so 1 tick = 1/960 s and
every event time is given in seconds), a random piece generator (melody, bass, chords, drums over a scale
at a random tempo), a solo generator (one instrument alone: isolated notes, phrases, repeated notes) and
:func:`render_notes` for single notes or chords with a known MIDI pitch (the evaluation's pitch task).
Rendering runs the ``fluidsynth`` program (Debian ``fluidsynth``) on ``FluidR3_GM.sf2`` (Debian
``fluid-soundfont-gm``, MIT licence).
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

SOUNDFONT_CANDIDATES = (
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "/usr/share/soundfonts/FluidR3_GM.sf2",
    "/usr/share/sounds/sf2/default-GM.sf2",
)
TICKS_PER_SECOND = 960  # 480 ticks per beat at the default 500000 us per beat
DRUM_CHANNEL = 9
DRUM_KITS = (0, 8, 16, 24, 25, 32, 40, 48, 56)  # FluidR3 percussion presets (bank 128)
SCALES = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "pentatonic": (0, 2, 4, 7, 9),
    "blues": (0, 3, 5, 6, 7, 10),
    "harmonic_minor": (0, 2, 3, 5, 7, 8, 11),
    "whole_tone": (0, 2, 4, 6, 8, 10),
}

Event = tuple[float, bytes]  # (time in seconds, raw MIDI message)


def soundfont_path() -> Path | None:
    """The General MIDI soundfont to use: ``$ENCOTAG_SOUNDFONT`` or FluidR3_GM.sf2, None if absent."""
    env = os.environ.get("ENCOTAG_SOUNDFONT")
    for cand in ([env] if env else []) + list(SOUNDFONT_CANDIDATES):
        if cand and Path(cand).is_file():
            return Path(cand)
    return None


def fluid_missing() -> str | None:
    """None if fluidsynth and a GM soundfont are installed, else a one-line reason."""
    if shutil.which("fluidsynth") is None:
        return "fluidsynth not installed (apt-get install fluidsynth)"
    if soundfont_path() is None:
        return "FluidR3_GM.sf2 not found (apt-get install fluid-soundfont-gm)"
    return None


def _varlen(n: int) -> bytes:
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    return bytes(reversed(out))


def midi_file(events: Sequence[Event], end_s: float) -> bytes:
    """A format-0 standard MIDI file holding ``events`` (any order; stable-sorted by time, note-offs first
    at equal times) and ending at ``end_s`` seconds (so the render keeps reverb tails up to there)."""
    order = sorted(range(len(events)), key=lambda i: (events[i][0], (events[i][1][0] & 0xF0) != 0x80, i))
    track = bytearray()
    last = 0
    for i in order:
        t, msg = events[i]
        tick = max(0, int(round(t * TICKS_PER_SECOND)))
        track += _varlen(tick - last) + msg
        last = tick
    end_tick = max(last, int(round(end_s * TICKS_PER_SECOND)))
    track += _varlen(end_tick - last) + b"\xb0\x7b\x00"  # all notes off on ch 0: an event at the very end
    track += b"\x00\xff\x2f\x00"
    header = b"MThd" + struct.pack(">IHHH", 6, 0, 1, 480)
    return header + b"MTrk" + struct.pack(">I", len(track)) + bytes(track)


def note_on(ch: int, pitch: int, vel: int) -> bytes:
    return bytes([0x90 | ch, pitch & 0x7F, max(1, min(127, vel))])


def note_off(ch: int, pitch: int) -> bytes:
    return bytes([0x80 | ch, pitch & 0x7F, 0])


def program_change(ch: int, program: int) -> bytes:
    return bytes([0xC0 | ch, program & 0x7F])


def control(ch: int, cc: int, value: int) -> bytes:
    return bytes([0xB0 | ch, cc & 0x7F, max(0, min(127, value))])


def render_midi(
    midi: bytes, sr: int, *, gain: float = 0.5, reverb: bool = True, chorus: bool = True, timeout: float = 300
) -> np.ndarray:
    """Render a MIDI file with fluidsynth at ``sr`` Hz: mono float32 (n,) (the stereo mix averaged)."""
    reason = fluid_missing()
    if reason:
        raise RuntimeError(reason)
    with tempfile.TemporaryDirectory(prefix="encotag_fluid_") as tmp:
        mid, wav = Path(tmp) / "in.mid", Path(tmp) / "out.wav"
        mid.write_bytes(midi)
        cmd = ["fluidsynth", "-ni", "-q", "-r", str(sr), "-g", f"{gain:.3f}", "-F", str(wav), "-T", "wav"]
        cmd += ["-R", "1" if reverb else "0", "-C", "1" if chorus else "0", str(soundfont_path()), str(mid)]
        res = subprocess.run(cmd, capture_output=True, timeout=timeout, check=False)
        if res.returncode != 0 or not wav.exists():
            raise RuntimeError(
                f"fluidsynth failed (exit {res.returncode}): {res.stderr.decode(errors='replace')[-200:]}"
            )
        x, _ = sf.read(wav, dtype="float32", always_2d=True)
    return x.mean(axis=1).astype(np.float32)


def _note_events(ch: int, pitches: Sequence[int], velocity: int, start: float, dur: float) -> list[Event]:
    ev: list[Event] = []
    for p in pitches:
        ev.append((start, note_on(ch, int(p), velocity)))
        ev.append((start + dur, note_off(ch, int(p))))
    return ev


def render_notes_batch(
    specs: Sequence[tuple[int, Sequence[int], int, float, bool]],
    sr: int,
    tail_s: float = 0.5,
    gap_s: float = 1.0,
) -> list[np.ndarray]:
    """Render many (program, pitches, velocity, note_s, drum) notes in one fluidsynth call.

    Each spec sounds ``pitches`` together (one pitch = a single note; several = a chord) from its slot start
    for ``note_s`` seconds; reverb and chorus are off and ``gap_s`` of silence separates slots, so one slot
    never bleeds into the next. Returns one mono float32 array per spec of exactly
    ``round((note_s + tail_s) * sr)`` samples @ ``sr`` (the note plus its release tail), not normalised.
    """
    events: list[Event] = []
    slots: list[tuple[float, int]] = []
    t = 0.0
    for program, pitches, velocity, note_s, drum in specs:
        ch = DRUM_CHANNEL if drum else 0
        events.append((t, control(ch, 120, 0)))  # all sound off from the previous slot
        events.append((t, program_change(ch, int(program))))
        events += _note_events(ch, pitches, int(velocity), t + 0.001, float(note_s))
        n = int(round((note_s + tail_s) * sr))
        slots.append((t, n))
        t += note_s + tail_s + gap_s
    audio = render_midi(midi_file(events, t), sr, reverb=False, chorus=False)
    out = []
    for start, n in slots:
        a = int(round(start * sr))
        seg = audio[a : a + n]
        out.append(np.pad(seg, (0, n - len(seg))).astype(np.float32))
    return out


def render_notes(
    program: int, pitches: list[int], velocity: int, note_s: float, sr: int, drum: bool = False
) -> np.ndarray:
    """One note (or chord: all ``pitches`` together) of GM ``program`` (0-127; with ``drum`` the percussion
    kit preset on channel 10 and pitches are drum keys) held ``note_s`` s at MIDI ``velocity``.

    Returns mono float32 (n,) @ ``sr`` with n = round((note_s + 0.5) * sr): the note plus a 0.5 s release
    tail, rendered dry (no reverb/chorus) with fluidsynth gain 0.5 and not normalised, so velocity is audible
    as level. Needs fluidsynth + fluid-soundfont-gm (:func:`fluid_missing`). For many notes use
    :func:`render_notes_batch` (one process for all of them).
    """
    return render_notes_batch([(program, pitches, velocity, note_s, drum)], sr)[0]


# ---------------------------------------------------------------------------------------------------------
# Random pieces for the corpus
# ---------------------------------------------------------------------------------------------------------


def _scale_pitches(root: int, scale: Sequence[int], lo: int, hi: int) -> list[int]:
    return [p for p in range(lo, hi + 1) if (p - root) % 12 in scale]


def random_piece(
    program: int, duration_s: float, rng: np.random.Generator
) -> tuple[list[Event], dict[str, Any]]:
    """A random piece of about ``duration_s`` s featuring GM ``program`` (0-127) or, for ``program == 128``,
    the drum kit alone. Adds 0-3 accompanying parts (bass, chords, drums) at a random tempo (50-200 bpm) in
    a random key and scale with varied note lengths and velocities. Returns MIDI events and parameters."""
    bpm = float(rng.uniform(50, 200))
    beat = 60.0 / bpm
    root = int(rng.integers(0, 12))
    scale_name = str(rng.choice(list(SCALES)))
    scale = SCALES[scale_name]
    legato = float(rng.uniform(0.3, 1.05))
    events: list[Event] = []
    parts: list[dict[str, Any]] = []
    drums_only = program == 128
    n_extra = int(rng.integers(0, 4))
    if not drums_only:
        lo = int(rng.integers(36, 66))
        pitches = _scale_pitches(root, scale, lo, lo + int(rng.integers(12, 30)))
        events.append((0.0, program_change(0, program)))
        chordal = bool(rng.random() < 0.3)
        t, idx = 0.0, int(rng.integers(0, len(pitches)))
        durs = np.array([0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0])
        weights = rng.dirichlet(np.ones(len(durs)))
        while t < duration_s:
            d = float(rng.choice(durs, p=weights)) * beat
            if rng.random() < 0.12:  # rest
                t += d
                continue
            idx = int(np.clip(idx + rng.integers(-3, 4), 0, len(pitches) - 1))
            notes = [pitches[idx]]
            if chordal:
                notes += [pitches[j] for j in (idx + 2, idx + 4) if j < len(pitches)]
            vel = int(np.clip(rng.normal(80, 20), 20, 127))
            events += _note_events(0, notes, vel, t, d * legato)
            t += d
        parts.append({"role": "lead", "program": program, "low": lo, "chordal": chordal})
    want_drums = drums_only or (n_extra > 0 and rng.random() < 0.5)
    if want_drums:
        kit = int(rng.choice(DRUM_KITS))
        events.append((0.0, program_change(DRUM_CHANNEL, kit)))
        sub = int(rng.choice([2, 3, 4]))
        keys = [int(k) for k in rng.choice(np.arange(35, 82), size=int(rng.integers(3, 8)), replace=False)]
        pattern = rng.random((len(keys), sub * 4)) < rng.uniform(0.1, 0.5, (len(keys), 1))
        step = beat / sub
        k = 0
        while k * step < duration_s:
            for j, key in enumerate(keys):
                if pattern[j, k % pattern.shape[1]] or (j == 0 and k % (sub * 2) == 0):
                    vel = int(np.clip(rng.normal(90, 18), 20, 127))
                    events += _note_events(DRUM_CHANNEL, [key], vel, k * step, step * 0.9)
            k += 1
        parts.append({"role": "drums", "kit": kit, "keys": keys, "subdivision": sub})
    if not drums_only and n_extra >= 1:  # bass
        bprog = int(rng.integers(32, 40)) if rng.random() < 0.7 else int(rng.integers(0, 128))
        events.append((0.0, program_change(1, bprog)))
        bass = _scale_pitches(root, scale, 28, 52)
        t = 0.0
        while t < duration_s:
            d = beat * float(rng.choice([0.5, 1.0, 2.0]))
            events += _note_events(1, [int(rng.choice(bass))], int(rng.integers(60, 110)), t, d * legato)
            t += d
        parts.append({"role": "bass", "program": bprog})
    if n_extra >= 2 and not drums_only:  # sustained chords
        cprog = int(rng.integers(0, 128))
        events.append((0.0, program_change(2, cprog)))
        mid = _scale_pitches(root, scale, 52, 76)
        bar = beat * 4
        t = 0.0
        while t < duration_s:
            i = int(rng.integers(0, max(1, len(mid) - 4)))
            chord = [mid[j] for j in (i, i + 2, i + 4) if j < len(mid)]
            events += _note_events(2, chord, int(rng.integers(40, 90)), t, bar * 0.98)
            t += bar
        parts.append({"role": "chords", "program": cprog})
    params = {
        "bpm": round(bpm, 1),
        "key": root,
        "scale": scale_name,
        "legato": round(legato, 2),
        "parts": parts,
    }
    return events, params


def _render_normalised(
    events: Sequence[Event],
    duration_s: float,
    sr: int,
    rng: np.random.Generator,
    p_reverb: float,
    p_chorus: float,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Render ``events`` with random reverb/chorus, peak-normalised to a random -12..-1 dBFS."""
    reverb, chorus = bool(rng.random() < p_reverb), bool(rng.random() < p_chorus)
    x = render_midi(midi_file(events, duration_s + 1.0), sr, reverb=reverb, chorus=chorus)
    peak = float(np.abs(x).max()) if len(x) else 0.0
    level = float(rng.uniform(-12, -1))
    if peak > 1e-5:
        x = x * (10 ** (level / 20) / peak)
    return x.astype(np.float32), {"reverb": reverb, "chorus": chorus, "peak_db": round(level, 1)}


def render_random_piece(
    program: int, duration_s: float, sr: int, rng: np.random.Generator
) -> tuple[np.ndarray, dict[str, Any]]:
    """:func:`random_piece` rendered at ``sr``: mono float32 peak-normalised to -1..-12 dBFS, parameters."""
    events, params = random_piece(program, duration_s, rng)
    x, render = _render_normalised(events, duration_s, sr, rng, 0.7, 0.5)
    return x, params | {"program": program} | render


# GM programs of the solo source: every melodic program except the two per family (8f train, 8f+1 test)
# that the evaluation's pitch task uses, plus the synth, ethnic, percussive and effect programs 96-127.
SOLO_PROGRAMS = tuple(p for p in range(128) if p >= 96 or p % 8 >= 2)
SOLO_STYLES = ("notes", "phrase", "repeated")


def solo_piece(
    program: int, duration_s: float, rng: np.random.Generator
) -> tuple[list[Event], dict[str, Any]]:
    """One instrument alone for about ``duration_s`` s, in one of :data:`SOLO_STYLES`:

    - ``notes``: isolated notes or chords (0.15-2.5 s each, then 0.05-1.2 s of silence) at random pitches
      of a 6-30 semitone range;
    - ``phrase``: a stepwise melody over a scale at 60-180 bpm with varied note lengths and short rests;
    - ``repeated``: a pitch repeated 3-8 times (0.08-0.6 s notes), then the next pitch.
    Velocities vary note by note (30-127). Returns MIDI events on channel 0 and the parameters.
    """
    style = str(rng.choice(SOLO_STYLES, p=[0.5, 0.3, 0.2]))
    lo = int(rng.integers(36, 78))
    hi = lo + int(rng.integers(6, 31))
    events: list[Event] = [(0.0, program_change(0, program))]
    t, n_notes = float(rng.uniform(0.0, 0.5)), 0

    def vel() -> int:
        return int(np.clip(rng.normal(85, 20), 30, 127))

    if style == "notes":
        while t < duration_s:
            dur = float(rng.uniform(0.15, 2.5))
            root = int(rng.integers(lo, hi + 1))
            chord = [root] + ([root + int(rng.choice([3, 4])), root + 7] if rng.random() < 0.15 else [])
            events += _note_events(0, chord, vel(), t, dur)
            t += dur + float(rng.uniform(0.05, 1.2))
            n_notes += 1
    elif style == "phrase":
        beat = 60.0 / float(rng.uniform(60, 180))
        pitches = _scale_pitches(int(rng.integers(0, 12)), SCALES[str(rng.choice(list(SCALES)))], lo, hi)
        idx = int(rng.integers(0, len(pitches)))
        legato = float(rng.uniform(0.5, 1.0))
        while t < duration_s:
            d = beat * float(rng.choice([0.5, 1.0, 1.5, 2.0]))
            if rng.random() > 0.1:
                idx = int(np.clip(idx + rng.integers(-2, 3), 0, len(pitches) - 1))
                events += _note_events(0, [pitches[idx]], vel(), t, d * legato)
                n_notes += 1
            t += d
    else:
        while t < duration_s:
            pitch, dur = int(rng.integers(lo, hi + 1)), float(rng.uniform(0.08, 0.6))
            gap = float(rng.uniform(0.03, 0.4))
            for _ in range(int(rng.integers(3, 9))):
                events += _note_events(0, [pitch], vel(), t, dur)
                t += dur + gap
                n_notes += 1
            t += float(rng.uniform(0.2, 1.0))
    return events, {"style": style, "low": lo, "high": hi, "notes": n_notes}


def render_solo_piece(
    program: int, duration_s: float, sr: int, rng: np.random.Generator
) -> tuple[np.ndarray, dict[str, Any]]:
    """:func:`solo_piece` rendered at ``sr`` (reverb p 0.4, chorus p 0.2): mono float32 peak-normalised to
    -1..-12 dBFS, parameters."""
    events, params = solo_piece(program, duration_s, rng)
    x, render = _render_normalised(events, duration_s, sr, rng, 0.4, 0.2)
    return x, params | {"program": program} | render
