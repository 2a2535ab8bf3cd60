"""`neuromusic run` as a user runs it: a real subprocess, real BrainFlow boards and the simulated listener.

The player (GPT-2, torch) and the recorder are left out with `--without` where a test is about the spine: they have
their own tests, and importing torch in every subprocess would cost seconds of the suite's two cores.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from lsl_fixtures import start_outlet, stop_outlet
from neuromusic.daemon import cli

SPINE_ONLY = ["--without", "player,recorder,telemetry"]


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "neuromusic.daemon.cli", "run", *args]


def environment(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data"), "PYTHONUNBUFFERED": "1"}


def run_cli(tmp_path: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command(*args), capture_output=True, text=True, timeout=timeout, cwd=tmp_path, env=environment(tmp_path)
    )


def parse_lines(stdout: str) -> list[dict[str, Any]]:
    lines = stdout.splitlines()
    assert lines, "no JSON lines on stdout"
    return [json.loads(line) for line in lines]  # every line must be JSON: stdout carries nothing else


def check_line(line: dict[str, Any]) -> None:
    assert isinstance(line["t"], float) and abs(line["t"] - time.time()) < 120
    assert line["score"] is None or 0.0 <= line["score"] <= 1.0
    assert line["state"] in ("calibrating", "scoring", "stale", "poor-signal")
    assert line["source"] in ("connecting", "streaming", "stale", "reconnecting", "stopped")
    assert line["quality"] is None or 0.0 <= line["quality"] <= 1.0
    if line["score"] is not None:
        assert line["state"] == "scoring"
    for per_channel in line["de"].values():
        assert all(v is None or math.isfinite(v) for v in per_channel.values())


def test_synthetic_board_json_lines_every_hop(tmp_path: Path) -> None:
    duration, hop = 5.0, 0.25
    done = run_cli(
        tmp_path, "--board", "synthetic", "--duration", str(duration), "--json", "--baseline", "1", *SPINE_ONLY
    )
    assert done.returncode == 0, done.stderr
    lines = parse_lines(done.stdout)
    for line in lines:
        check_line(line)
    times = [line["t"] for line in lines]
    assert times == sorted(times)
    # At least one line per hop once running (start-up takes well under a second of the duration).
    assert len(lines) >= (duration - 1.0) / hop
    # One line per hop on average; a single gap may stretch while two loaded cores schedule other work.
    assert max(b - a for a, b in itertools.pairwise(times)) <= 4 * hop
    scored = [line for line in lines if line["state"] == "scoring"]
    assert scored, "a 1 s baseline + 2 s window must give scores within 5 s"
    assert set(scored[-1]["de"]) == {"delta", "theta", "alpha", "beta", "gamma"}
    assert len(scored[-1]["de"]["alpha"]) == 16  # BrainFlow's synthetic board has 16 EEG channels
    assert lines[0]["state"] in ("stale", "calibrating")


def test_simulated_listener_and_profile_round_trip(tmp_path: Path) -> None:
    profile = tmp_path / "me.json"
    args = ["--board", "simulated", "--script", "calm:30", "--duration", "3", "--json", "--baseline", "0.5"]
    args += ["--window", "1"]
    first = run_cli(tmp_path, *args, "--profile", str(profile), *SPINE_ONLY)
    assert first.returncode == 0, first.stderr
    states = [line["state"] for line in parse_lines(first.stdout)]
    assert "calibrating" in states and "scoring" in states
    saved = json.loads(profile.read_text())
    assert saved["version"] == 1 and len(saved["score"]["channel_names"]) > 0
    # The next session starts from the profile: no calibration phase at all.
    second = run_cli(tmp_path, *args, "--profile", str(profile), *SPINE_ONLY)
    assert second.returncode == 0, second.stderr
    states = [line["state"] for line in parse_lines(second.stdout)]
    assert "calibrating" not in states and "scoring" in states


def test_not_a_tty_prints_nothing_and_the_score_path_never_imports_torch(tmp_path: Path) -> None:
    # The player loads torch lazily on its own thread; without it, nothing on the way to a score may import it.
    code = (
        "import sys; from neuromusic.daemon import cli; "
        "code = cli.main(['run', '--board', 'synthetic', '--duration', '0.5', '--without', 'player']); "
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules, 'torch imported'; sys.exit(code)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=environment(tmp_path),
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_stops_cleanly_within_the_deadline(tmp_path: Path, signum: int) -> None:
    proc = subprocess.Popen(
        command("--board", "synthetic", "--json", "--stop-timeout", "3", *SPINE_ONLY),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env=environment(tmp_path),
    )
    try:
        assert proc.stdout is not None
        json.loads(proc.stdout.readline())  # running: it has printed its first line
        sent = time.monotonic()
        proc.send_signal(signum)
        stdout, stderr = proc.communicate(timeout=10)
        elapsed = time.monotonic() - sent
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 0, stderr
    assert elapsed < 3.0, f"shutdown took {elapsed:.2f} s"
    assert signal.Signals(signum).name in stderr
    assert "Traceback" not in stderr
    for line in stdout.splitlines():
        json.loads(line)


def main_in_process(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """The CLI's own entry point in this process: the same path as the console script, minus interpreter start-up."""
    code = cli.main(["run", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_unknown_board_lists_the_valid_names(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = main_in_process(capsys, "--board", "nosuchboard", "--duration", "1", *SPINE_ONLY)
    assert code == 2
    assert "unknown board 'nosuchboard'" in err
    for name in ("synthetic", "simulated", "playback", "lsl", "replay", "neuromusic devices"):
        assert name in err
    assert "did you mean" not in err and "ganglion" not in err  # no far-fetched guesses, no list of 60 boards
    assert "Traceback" not in err and out == ""


def test_headset_not_found_is_a_clear_message_and_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = main_in_process(
        capsys, "--board", "cyton", "--serial-port", "/dev/ttyNOPE", "--duration", "5", *SPINE_ONLY
    )
    assert code == 4, err
    assert "/dev/ttyNOPE" in err and "neuromusic: error:" in err
    assert "Traceback" not in err and out == ""


def test_lsl_stream_not_found(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = main_in_process(
        capsys, "--board", "lsl", "--lsl-name", "nobody-here", "--resolve-timeout", "1", *SPINE_ONLY
    )
    assert code == 4, err
    assert "nobody-here" in err and "Traceback" not in err


def test_broken_profile_is_refused_and_kept(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    profile = tmp_path / "me.json"
    profile.write_text("{not json")
    code, _, err = main_in_process(
        capsys, "--board", "synthetic", "--duration", "1", "--profile", str(profile), *SPINE_ONLY
    )
    assert code == 2
    assert str(profile) in err and "Traceback" not in err
    assert profile.read_text() == "{not json"  # nothing the listener built up is overwritten


def test_unknown_service_in_without(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = main_in_process(capsys, "--board", "synthetic", "--duration", "1", "--without", "jukebox")
    assert code == 2
    assert "jukebox" in err and "player" in err


def test_devices_lists_boards_lsl_streams_midi_and_audio(capsys: pytest.CaptureFixture[str]) -> None:
    source_id = f"nm-devices-{time.monotonic_ns()}"
    outlet = start_outlet("nm-devices", source_id, seconds=30)
    try:
        assert cli.main(["devices", "--json", "--lsl-wait", "1"]) == 0
    finally:
        stop_outlet(outlet)
    report = json.loads(capsys.readouterr().out)
    assert "cyton" in report["brainflow_boards"] and "simulated" in report["sources"]
    assert source_id in [stream["source_id"] for stream in report["lsl_streams"]]
    # Without an ALSA sequencer (containers, CI): said, not crashed (a machine with MIDI lists ports instead).
    assert report["midi_ports"] or any("ALSA" in problem for problem in report["midi_problems"])
    assert "file" in report["audio_drivers"]
    assert cli.main(["devices", "--lsl-wait", "0.2"]) == 0
    text = capsys.readouterr().out
    assert "BrainFlow boards" in text and "MIDI output ports" in text and "FluidSynth audio drivers" in text


def test_json_lines_survive_python_packages_that_print(tmp_path: Path) -> None:
    # pyfluidsynth prints where it found its library when CI is set; with music playing into a WAV file that print
    # happens mid-run, and it must land on stderr, not in the JSON stream
    env = {**environment(tmp_path), "CI": "1"}
    args = ["--board", "synthetic", "--duration", "4", "--json", "--synth", "none", "--baseline", "1"]
    done = subprocess.run(command(*args), capture_output=True, text=True, timeout=90, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    for line in parse_lines(done.stdout):
        check_line(line)


def test_reserved_stdout_takes_json_lines_only() -> None:
    probe = (
        "import sys\n"
        "from neuromusic.daemon.services.json_output import reserve_stdout\n"
        "out = reserve_stdout()\n"
        "print('a stray print')\n"
        "sys.stdout.write('a stray write\\n')\n"
        "import os; os.write(1, b'a C library writing to fd 1\\n')\n"
        "out.write('{\"t\": 1.0}\\n')\n"
        "assert reserve_stdout() is out\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == '{"t": 1.0}\n'
    assert "a stray print" in done.stderr and "a stray write" in done.stderr and "fd 1" in done.stderr
