"""The melody as a listener hears it: phrase form and line of generated pieces against held-out real tunes.

Generated: 32-bar pieces of the shipped checkpoint for valence 0.1 / 0.9 x energy 0.1 / 0.5 / 0.9 x `--seeds` seeds
at 66 BPM, each arranged by the project's Arranger; the figures are taken on the melody the arranger plays (its
octave moves included). Composed with the phrase memory and line steering off (the baseline), each on alone, and
both on (the default). Real: the first 32 bars of held-out 4/4 tunes (one tune in 20, as in training) of
music21's ABC corpus. Figures (models/music/listening.py) are medians over the pieces. With `--loudness`, each
control setting of the default composer is also rendered (FluidSynth, through the WAV sink) and measured to
ITU-R BS.1770 with pyloudnorm: integrated loudness, loudness range, sample peak.

    .venv/bin/python benchmarks/music_heard.py [--seeds 2] [--real 40] [--bars 32] [--loudness]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import wave
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
from neuromusic.models.core.messages import Bar, Controls
from neuromusic.models.music import listening
from neuromusic.models.music.abc import parse_bar
from neuromusic.models.music.arranger import Arranger
from neuromusic.models.music.composer import Composer
from neuromusic.models.music.config import ComposerConfig
from neuromusic.models.music.corpus import BuildStats, iter_records

VALENCES = (0.1, 0.9)
ENERGIES = (0.1, 0.5, 0.9)
TEMPO = 66.0
TARGETS = {
    "bars that recur exactly (%)": (">=", 20.0),
    "2-bar motifs that recur (%)": (">=", 10.0),
    "phrase ends on the tonic vs other bars (points)": (">=", 5.0),
    "melodic range (semitones)": ("<=", 18.0),
    "leaps of 5+ semitones (%)": ("<=", 14.0),
    "drift, first to last quarter (semitones)": ("<=", 4.0),
}


def settings(seeds: int) -> list[tuple[Controls, int]]:
    return [
        (Controls(TEMPO, valence, energy), seed)
        for valence in VALENCES
        for energy in ENERGIES
        for seed in range(1, seeds + 1)
    ]


def compose(composer: Composer, controls: Controls, seed: int, bars: int) -> list[Bar]:
    composer.reset(seed)
    return [composer.next_bar(controls) for _ in range(bars)]


def heard(piece: list[Bar]) -> list[listening.HeardBar]:
    """The melody the arranger plays: its pitches (octave moves included) on the bars' rhythm."""
    arranger = Arranger()
    t0, out = 0.0, []
    for bar in piece:
        events = arranger.arrange(bar, t0, bar.controls.tempo)
        # one event per note: where the calm and lively voices crossfade, both play it
        melody = sorted({e.t: e for e in events if e.role == "melody"}.values(), key=lambda e: e.t)
        out.append(listening.from_bar(bar, [e.pitch for e in melody]))
        t0 = max((e.t + e.duration for e in events), default=t0 + 1.0)
    return out


def real_pieces(count: int, bars: int) -> list[list[listening.HeardBar]]:
    """Up to the first `bars` bars of held-out 4/4 tunes of music21's corpus of at least 16 whole bars (few
    folk tunes written without repeats are longer), in C (tonic pitch class 0)."""
    pieces = []
    for record in iter_records([], [], True, BuildStats()):
        if record.split != "valid" or record.meter != "4/4" or len(record.bars) < 16:
            continue
        pieces.append([listening.from_abc_notes(parse_bar(b, "4/4").notes, 0) for b in record.bars[:bars]])
        if len(pieces) >= count:
            break
    return pieces


def generated(config: ComposerConfig, seeds: int, bars: int) -> tuple[list[list[listening.HeardBar]], list[float]]:
    composer = Composer.load(config)
    pieces, times = [], []
    for controls, seed in settings(seeds):
        piece = compose(composer, controls, seed, bars)
        times += [b.compose_ms for b in piece]
        pieces.append(heard(piece))
    return pieces, times


def print_table(columns: dict[str, dict[str, float]]) -> None:
    names = list(columns)
    print(f"{'median over pieces':<50}" + "".join(f"{n:>16}" for n in names) + f"{'target':>10}")
    for figure in listening.FIGURES:
        sign, value = TARGETS[figure]
        row = "".join(f"{columns[n][figure]:16.1f}" for n in names)
        print(f"{figure:<50}{row}{sign + ' ' + format(value, 'g'):>10}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=2, help="pieces per control setting (6 settings)")
    parser.add_argument("--real", type=int, default=40, help="held-out real tunes")
    parser.add_argument("--bars", type=int, default=32)
    parser.add_argument("--loudness", action="store_true", help="also render and measure loudness per setting")
    args = parser.parse_args()
    base = ComposerConfig(threads=1)
    variants: dict[str, Callable[[ComposerConfig], ComposerConfig]] = {
        "baseline": lambda c: replace(c, phrase_memory=False, shape_line=False),
        "line only": lambda c: replace(c, phrase_memory=False, shape_line=True),
        "phrases only": lambda c: replace(c, phrase_memory=True, shape_line=False),
        "both (default)": lambda c: c,
    }
    columns: dict[str, dict[str, float]] = {}
    timing: dict[str, list[float]] = {}
    for name, make in variants.items():
        started = time.perf_counter()
        pieces, times = generated(make(base), args.seeds, args.bars)
        columns[name] = listening.figures(pieces)
        timing[name] = times
        print(f"{name}: {len(pieces)} pieces in {time.perf_counter() - started:.0f} s")
    real = real_pieces(args.real, args.bars)
    columns[f"real ({len(real)})"] = listening.figures(real)
    print()
    print_table(columns)
    print()
    for name, times in timing.items():
        ordered = sorted(times)
        p95 = ordered[int(0.95 * (len(ordered) - 1))]
        print(f"compose ms per bar, {name:<16} median {ordered[len(ordered) // 2]:6.1f}  p95 {p95:6.1f}")
    if args.loudness:
        print()
        print_loudness(base, args.bars)


def render(piece: list[Bar], path: Path) -> None:
    """The arranged piece through the WAV sink (FluidSynth and the sinks' default soundfont and gain)."""
    from neuromusic.drivers.sinks.config import SinkConfig
    from neuromusic.drivers.sinks.wav_sink import WavSink

    arranger = Arranger()
    sink = WavSink(path, SinkConfig(), 0.0)
    for channel, program in arranger.programs().items():
        sink.program(channel, program, 0.0)
    notes: list[tuple[float, int, int, int, int]] = []  # (t, on = 1 / off = 0, channel, pitch, velocity)
    t0 = 0.0
    for bar in piece:
        arranged = arranger.arrange_bar(bar, t0, bar.controls.tempo)
        for e in arranged.events:
            notes += [(e.t, 1, e.channel, e.pitch, e.velocity), (e.t + e.duration, 0, e.channel, e.pitch, 0)]
        t0 += arranged.duration
    for t, on, channel, pitch, velocity in sorted(notes):
        if on:
            sink.note_on(channel, pitch, velocity, t)
        else:
            sink.note_off(channel, pitch, t)
    sink.close(t0)


def loudness(path: Path) -> tuple[float, float, float]:
    """(integrated loudness LUFS, loudness range LU, sample peak dBFS) of a 16-bit WAV file, to ITU-R BS.1770
    (pyloudnorm); the range as EBU Tech 3342 defines it, from 3 s windows a second apart, gated at -70 LUFS and
    20 LU under their mean power."""
    import pyloudnorm

    with wave.open(str(path), "rb") as file:
        rate, channels = file.getframerate(), file.getnchannels()
        data = np.frombuffer(file.readframes(file.getnframes()), dtype=np.int16).reshape(-1, channels) / 32768.0
    meter = pyloudnorm.Meter(rate)
    integrated = float(meter.integrated_loudness(data))
    short = []
    for start in range(0, len(data) - 3 * rate + 1, rate):
        value = meter.integrated_loudness(data[start : start + 3 * rate])
        if value > -70.0:
            short.append(value)
    gate = 10.0 * np.log10(np.mean(np.power(10.0, np.array(short) / 10.0))) - 20.0 if short else 0.0
    kept = [v for v in short if v > gate]
    spread = float(np.percentile(kept, 95) - np.percentile(kept, 10)) if kept else float("nan")
    peak = 20.0 * np.log10(max(float(np.abs(data).max()), 1e-9))
    return integrated, spread, peak


def print_loudness(config: ComposerConfig, bars: int) -> None:
    try:
        import pyloudnorm  # noqa: F401
    except ImportError:
        print("loudness needs pyloudnorm: .venv/bin/python -m pip install pyloudnorm")
        return
    composer = Composer.load(config)
    print(f"{'arranged render, seed 1':<28}{'LUFS':>8}{'LRA LU':>8}{'peak dBFS':>11}")
    with tempfile.TemporaryDirectory() as folder:
        for controls, seed in settings(1):
            path = Path(folder) / "piece.wav"
            render(compose(composer, controls, seed, bars), path)
            integrated, spread, peak = loudness(path)
            name = f"valence {controls.valence:.1f}, energy {controls.energy:.1f}"
            print(f"{name:<28}{integrated:8.1f}{spread:8.1f}{peak:11.1f}")


if __name__ == "__main__":
    main()
