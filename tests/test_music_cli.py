"""`neuromusic data build`, `generate` and `eval-model` as a user runs them, bad input included."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import mido
import pretty_midi
import pytest
import soundfile
from neuromusic.daemon.cli import main
from neuromusic.drivers.sinks.loudness import measure_file
from neuromusic.models.music.abc import parse_tune

from tests.music_fixtures import TINY_TRAIN, write_tunes


def _melody_midi(path: Path) -> None:
    pm = pretty_midi.PrettyMIDI(initial_tempo=90)
    flute = pretty_midi.Instrument(program=73)
    drums = pretty_midi.Instrument(program=0, is_drum=True)
    for beat in range(32):  # 8 bars of 4/4 in A minor; a drum track that must be ignored
        pitch = [69, 72, 76, 74, 72, 71, 69, 68][beat % 8]
        flute.notes.append(pretty_midi.Note(80, pitch, beat * 60 / 90, (beat + 0.9) * 60 / 90))
        drums.notes.append(pretty_midi.Note(80, 36, beat * 60 / 90, (beat + 0.2) * 60 / 90))
    pm.instruments += [flute, drums]
    pm.write(str(path))


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(corpus, checkpoint) from a folder that also holds corrupt and non-music files."""
    root = tmp_path_factory.mktemp("cli")
    abc_dir = write_tunes(root / "abc")
    (abc_dir / "binary.abc").write_bytes(bytes(range(256)) * 4)
    (abc_dir / "letter.abc").write_text("Dear reader,\nthis is not music.\n")
    (abc_dir / "readme.txt").write_text("ignored: not an .abc file")
    midi_dir = root / "midi"
    midi_dir.mkdir()
    _melody_midi(midi_dir / "melody.mid")
    (midi_dir / "corrupt.mid").write_bytes(b"MThd\x00\x00\x00\x06garbage" + bytes(50))
    data = root / "data"
    args = ["data", "build", "--no-music21", "--abc-dir", str(abc_dir), "--midi-dir", str(midi_dir), "--out", str(data)]
    assert main([*args, "--vocab-size", "100"]) == 0
    checkpoint = root / "ckpt"
    assert main(["train", "--data", str(data), "--out", str(checkpoint), "--steps", "10", *TINY_TRAIN]) == 0
    return data, checkpoint


def test_corrupt_and_non_music_files_are_skipped_and_counted(built: tuple[Path, Path]) -> None:
    stats = json.loads((built[0] / "stats.json").read_text())
    assert stats["tunes"] == 9  # eight ABC tunes and the MIDI melody
    assert stats["files"] == 5  # readme.txt is not looked at
    skipped = stats["skipped"]
    assert skipped["unreadable file (binary file)"] == 1
    assert skipped["no X: tune in file"] == 1
    assert sum(v for k, v in skipped.items() if k.startswith("unreadable MIDI")) == 1
    records = [json.loads(line) for line in (built[0] / "corpus.jsonl").read_text().splitlines()]
    midi = next(r for r in records if r["id"] == "melody.mid")
    assert (
        midi["minor"]
        and midi["meter"] == "4/4"
        and len(midi["bars"]) == 8
        and midi["tempo"] == pytest.approx(90, abs=0.01)
    )


def test_limit_and_deterministic_split(tmp_path: Path) -> None:
    abc_dir = write_tunes(tmp_path / "abc")
    for name in ("a", "b"):
        assert main(["data", "build", "--no-music21", "--abc-dir", str(abc_dir), "--out", str(tmp_path / name),
                     "--limit", "3", "--vocab-size", "80"]) == 0  # fmt: skip
    a, b = ((tmp_path / n / "corpus.jsonl").read_text() for n in ("a", "b"))
    assert a == b and len(a.splitlines()) == 3


def test_bad_build_arguments(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "build", "--no-music21", "--abc-dir", str(tmp_path / "missing"), "--out", str(tmp_path)]) == 2
    assert "is not a folder" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["data", "build", "--no-music21", "--abc-dir", str(empty), "--out", str(tmp_path / "o")]) == 7
    assert "no usable tunes" in capsys.readouterr().err


def test_generate_writes_midi_abc_wav_and_repeats_with_a_seed(
    built: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    common = ["generate", "--checkpoint", str(built[1]), "--bars", "8", "--tempo", "70", "--valence", "0.8",
              "--energy", "0.2", "--seed", "1"]  # fmt: skip
    one, two = tmp_path / "one", tmp_path / "two"
    assert main([*common, "-o", str(one / "out.mid"), "--abc", str(one / "out.abc"), "--wav", str(one / "o.wav")]) == 0
    assert main([*common, "-o", str(two / "out.mid"), "--abc", str(two / "out.abc")]) == 0
    assert (one / "out.abc").read_text() == (two / "out.abc").read_text()
    tune = parse_tune((one / "out.abc").read_text())
    assert len(tune.bars) == 8 and all(bar.complete for bar in tune.bars) and tune.key.name == "D"
    midi = mido.MidiFile(str(one / "out.mid"))  # the arrangement a session plays: one named track per part
    parts = {track.name.split(":")[0] for track in midi.tracks[1:] if any(m.type == "note_on" for m in track)}
    assert {"melody", "chords", "bass", "pad"} <= {part.removesuffix(" (calm)") for part in parts}
    assert midi.length == pytest.approx(8 * 4 * 60 / 70, abs=0.5)
    assert soundfile.info(str(one / "o.wav")).duration > 8 * 4 * 60 / 70
    loudness = measure_file(one / "o.wav")
    assert -23.0 <= loudness.integrated <= -16.0 and loudness.true_peak <= -1.0
    assert f"o.wav: {loudness.integrated:.1f} LUFS" in capsys.readouterr().out
    assert main([*common, "--melody-only", "-o", str(two / "bare.mid")]) == 0
    bare = mido.MidiFile(str(two / "bare.mid"))
    assert [track.name for track in bare.tracks] == ["neuromusic", "melody: Flute"]
    sounding = [m.note for m in bare.tracks[1] if m.type == "note_on" and m.velocity > 0]
    assert sounding == [n.pitch for bar in tune.bars for n in bar.notes]  # the line as written, nothing added


def test_generate_follows_a_plan(built: tuple[Path, Path], tmp_path: Path) -> None:
    plan = tmp_path / "plan.toml"
    plan.write_text("[[segment]]\nbars = 3\nvalence = 0.9\n[[segment]]\nbars = 2\nvalence = 0.1\ntempo = 60\n")
    out = tmp_path / "plan.abc"
    assert main(["generate", "--checkpoint", str(built[1]), "--plan", str(plan), "--abc", str(out)]) == 0
    text = out.read_text()
    assert "K:D\n" in text and "[K:Dm]" in text
    assert len(parse_tune(text).bars) == 5


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--valence", "1.5"], "valence must be within 0..1"),
        (["--tempo", "0"], "tempo must be within"),
        (["--meter", "7/4"], "meter"),
        (["--bars", "0"], "--bars"),
    ],
)
def test_generate_rejects_bad_controls(
    built: tuple[Path, Path], arguments: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["generate", "--checkpoint", str(built[1]), *arguments]) == 2
    assert message in capsys.readouterr().err


def test_generate_rejects_a_bad_plan(built: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    plan = tmp_path / "plan.toml"
    for text, message in (("[[segment]]\nbars = 2\nmood = 1\n", "unknown key mood"), ("bars = 2\n", "[[segment]]"),
                          ("[[segment]]\nbars = 2\nenergy = 3\n", "energy must be within 0..1")):  # fmt: skip
        plan.write_text(text)
        assert main(["generate", "--checkpoint", str(built[1]), "--plan", str(plan)]) == 2
        assert message in capsys.readouterr().err


def test_generate_without_a_checkpoint_says_how_to_get_one(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["generate", "--checkpoint", str(tmp_path), "--bars", "2"]) == 6
    assert "neuromusic train" in capsys.readouterr().err


def test_eval_model_prints_figures(built: tuple[Path, Path], tmp_path: Path) -> None:
    out = tmp_path / "figures.json"
    args = ["eval-model", "--data", str(built[0]), "--checkpoint", str(built[1]), "--pieces", "1", "--bars", "4"]
    assert main([*args, "--json", str(out)]) == 0
    figures = json.loads(out.read_text())
    assert figures["parse_rate"] == 1.0
    assert 0.0 <= figures["valence_adherence"] <= 1.0 and 0.0 <= figures["energy_adherence"] <= 1.0
    assert figures["perplexity"] > 1.0
    assert 2.0 < figures["pc_entropy_real"] < 3.6 and 0.8 < figures["scale_consistency_real"] <= 1.0


@pytest.mark.slow
def test_torchrun_trains_on_two_processes_and_one_reports(built: tuple[Path, Path], tmp_path: Path) -> None:
    """The multi-GPU path (DDP under torchrun) run for real on two CPU processes (gloo): one checkpoint, one summary,
    and the weights the ranks kept in step load as a working model."""
    out = tmp_path / "ddp"
    torchrun = Path(sys.executable).with_name("torchrun")
    args = ["train", "--data", str(built[0]), "--out", str(out), "--steps", "4", "--eval-every", "2", *TINY_TRAIN]
    done = subprocess.run(
        [str(torchrun), "--standalone", "--nproc_per_node", "2", "-m", "neuromusic.daemon.cli", *args],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("saved to") == 1  # rank 0 only
    assert done.stderr.count("step 2/4: train loss") == 1  # no terminal: plain progress lines, rank 0 only
    state = json.loads((out / "state.json").read_text())
    assert state["info"]["step"] == 4
    generated = tmp_path / "ddp.mid"
    assert main(["generate", "--checkpoint", str(out), "--bars", "4", "--seed", "1", "-o", str(generated)]) == 0
    assert generated.stat().st_size > 0
