"""Calibration: >= 90 % cross-validated accuracy on the simulated listener; pure noise is refused, and says why."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from neuromusic.daemon.cli.calibrate import _flat_out, run_protocol, simulated_script
from neuromusic.daemon.config import load_config
from neuromusic.drivers.base import SourceInfo
from neuromusic.drivers.listener_profile import load_profile
from neuromusic.drivers.simulated import ScriptedState, SimulatedListener
from neuromusic.models.core.clock import VirtualClock
from neuromusic.models.core.errors import ConfigError
from neuromusic.models.core.messages import Chunk
from neuromusic.models.signal.calibration import (
    CalibrationConfig,
    CalibrationData,
    fit_calibration,
    parse_protocol,
    relaxation,
)

CLI = [sys.executable, "-m", "neuromusic.daemon.cli"]
SHORT = "rest:20,arithmetic:20,rest:20,arithmetic:20,rest:20,arithmetic:20"
ACCURACY = "rest:30,arithmetic:30,rest:30,arithmetic:30,rest:30,arithmetic:30"
TINY = "rest:12,arithmetic:12,rest:12,arithmetic:12"


class WhiteNoise:
    """Pure noise, 8 channels at 250 Hz: a test double for a headset that carries no information."""

    def __init__(self, seed: int) -> None:
        self._rng = np.random.default_rng(seed)
        self._t = 0.0
        self.names = tuple(f"C{i}" for i in range(8))

    def open(self) -> SourceInfo:
        return SourceInfo("white noise", 250.0, self.names, "test")

    def read(self, max_wait: float) -> Chunk:
        stamps = self._t + np.arange(25) / 250.0
        self._t += 0.1
        return Chunk(self._rng.normal(size=(8, 25)) * 10.0, stamps, self.names, 250.0)

    def close(self) -> None:
        pass


def _simulated(config: object, seed: int = 0) -> tuple[SimulatedListener, object]:
    clock = VirtualClock()
    blocks = parse_protocol(config.calibration.protocol)  # type: ignore[attr-defined]
    listener = SimulatedListener(load_profile(None), ScriptedState(simulated_script(blocks)), clock, seed)
    return listener, _flat_out(listener, clock)


def test_simulated_listener_reaches_90_percent(capsys: pytest.CaptureFixture[str]) -> None:
    config = load_config(overrides={"calibration.protocol": ACCURACY})
    accuracies = []
    for seed in (0,):
        listener, read = _simulated(config, seed)
        outcome = run_protocol(listener, config, read=read, say=lambda _: None)  # type: ignore[arg-type]
        result = outcome.result
        accuracies.append(result.cv_accuracy)
        assert result.accepted, result.reason
        assert result.cv_accuracy >= 0.9
        assert result.p_value < 1e-6
    print(f"simulated listener CV accuracy: {', '.join(f'{a:.1%}' for a in accuracies)}")
    section = outcome.calibration_section
    assert section["channel_names"] == list(listener.channel_names)
    assert len(section["weights"]) == len(section["band_names"]) * len(section["channel_names"])
    # The saved model ranks fresh calm EEG above fresh stressed EEG.
    calm, stress = _fresh_de(config, "calm:20"), _fresh_de(config, "stress:20")
    assert np.mean([relaxation(section, de) for de in calm]) > 0.8
    assert np.mean([relaxation(section, de) for de in stress]) < 0.2


def _fresh_de(config: object, script: str) -> list[np.ndarray]:
    from neuromusic.models.signal.pipeline import FeaturePipeline

    clock = VirtualClock()
    listener = SimulatedListener(load_profile(None), ScriptedState(script), clock, seed=7)
    info = listener.open()
    pipeline = FeaturePipeline(config.features, info.sfreq, info.channel_names)  # type: ignore[attr-defined]
    out = []
    for _ in range(100):
        for features in pipeline.push(listener.generate(50)):
            out.append(np.where(features.good[None, :], features.de, np.nan))
    return out[20:]


def test_pure_noise_is_refused_and_says_why() -> None:
    config = load_config(overrides={"calibration.protocol": SHORT})
    for seed in (0, 1):
        source = WhiteNoise(seed)
        outcome = run_protocol(source, config, say=lambda _: None)
        result = outcome.result
        assert not result.accepted
        assert 0.3 < result.cv_accuracy < 0.7
        assert "not clearly above chance" in result.reason and "calibrate again" in result.reason


def test_options_change_the_fit() -> None:
    rng = np.random.default_rng(0)
    data = CalibrationData(("alpha", "beta"), ("C1", "C2"))
    for block, relaxed in enumerate([True, False, True, False]):
        for _ in range(80):
            data.add(rng.normal(size=(2, 2)) + (0.8 if relaxed else 0.0), relaxed, block)
    base = fit_calibration(data, CalibrationConfig(l2=1.0), 2.0, 0.25)
    assert base.accepted
    strong = fit_calibration(data, CalibrationConfig(l2=100.0), 2.0, 0.25)
    assert np.abs(strong.model.weights).sum() < np.abs(base.model.weights).sum() / 5
    strict = fit_calibration(data, CalibrationConfig(min_accuracy=1.0), 2.0, 0.25)
    assert not strict.accepted and "needs at least 100%" in strict.reason
    # fewer independent windows (a long window per hop) -> a larger p-value for the same accuracy
    assert fit_calibration(data, CalibrationConfig(), 8.0, 0.25).p_value > base.p_value


def test_settle_leaves_block_starts_out() -> None:
    counts = []
    for settle in (0.0, 5.0):
        config = load_config(overrides={"calibration.protocol": TINY, "calibration.settle_s": settle})
        listener, read = _simulated(config)
        counts.append(run_protocol(listener, config, read=read, say=lambda _: None).result.n_windows)  # type: ignore[arg-type]
    # 5 s x 4 hops/s per block; the very first block has no full window for its first 2 s anyway
    assert counts[0] - counts[1] == pytest.approx(4 * 5 / 0.25 - 2 / 0.25, abs=4)


def test_bad_protocols_are_config_errors() -> None:
    with pytest.raises(ValueError, match="at least two rest"):
        parse_protocol("rest:30,arithmetic:30")
    with pytest.raises(ValueError, match="KIND:SECONDS"):
        parse_protocol("nap:30,rest:30")
    with pytest.raises(ConfigError, match="calibration"):
        load_config(overrides={"calibration.protocol": "rest:3,arithmetic:3,rest:3,arithmetic:3"})
    with pytest.raises(ConfigError, match="min_accuracy"):
        load_config(overrides={"calibration.min_accuracy": 0.2})


@pytest.mark.slow  # calibrate + run subprocesses: about 20-30 s here, most of it run start-up
def test_cli_saves_a_profile_that_run_uses(tmp_path: Path) -> None:
    profile = tmp_path / "alice.json"
    command = [*CLI, "calibrate", "--board", "simulated", "--fast", "--protocol", SHORT, "--profile", str(profile)]
    done = subprocess.run(
        [*command, "--session-dir", str(tmp_path / "cal")], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "cross-validated accuracy" in done.stdout and "profile saved" in done.stdout
    saved = json.loads(profile.read_text())
    assert saved["calibration"]["cv_accuracy"] >= 0.9 and "score" in saved
    phases = [e["text"] for e in map(json.loads, (tmp_path / "cal" / "events.jsonl").read_text().splitlines())]
    assert phases[:2] == ["rest 1", "arithmetic 2"]
    # run --profile scores from the first hop: no baseline phase
    run = [*CLI, "run", "--board", "simulated", "--profile", str(profile), "--duration", "3", "--json"]
    lines = subprocess.run([*run, "--synth", "none", "--no-record"], capture_output=True, text=True, timeout=60)
    states = [json.loads(line)["state"] for line in lines.stdout.splitlines()]
    assert "scoring" in states and "calibrating" not in states


def test_cli_refuses_fast_with_a_headset(tmp_path: Path) -> None:
    done = subprocess.run([*CLI, "calibrate", "--board", "synthetic", "--fast"], capture_output=True, text=True)
    assert done.returncode == ConfigError.exit_code
    assert "--fast needs --board simulated" in done.stderr and "Traceback" not in done.stderr


def _eyes_recording(path: Path, seconds: float, block_s: float, sfreq: float = 160.0) -> Path:
    """A FIF file: alpha on during the rest blocks, off during arithmetic, `seconds` long in all."""
    import mne

    rng = np.random.default_rng(0)
    t = np.arange(round(seconds * sfreq)) / sfreq
    x = rng.standard_normal((4, t.size)) * 10e-6
    rest = (t // block_s) % 2 == 0
    x[:, rest] += 30e-6 * np.sin(2 * np.pi * 10 * t[rest])
    info = mne.create_info(["O1", "O2", "Pz", "Fz"], sfreq, "eeg")
    mne.io.RawArray(x, info, verbose="error").save(path, overwrite=True, verbose="error")
    return path


def _run_bounded(source: object, config: object, limit_s: float = 60.0) -> object:
    """run_protocol in a thread: a calibration that waits forever fails the test instead of hanging it."""
    import threading

    said: list[str] = []
    box: dict[str, object] = {}

    def work() -> None:
        try:
            box["outcome"] = run_protocol(source, config, say=said.append)
        except Exception as error:  # handed to the test thread
            box["error"] = error

    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    worker.join(limit_s)
    assert not worker.is_alive(), f"calibration still waiting after {limit_s} s; said: {said}"
    box["said"] = said
    return box


def test_a_replay_that_ends_with_the_protocol_finishes_the_calibration(tmp_path: Path) -> None:
    """Blocks of 10.1 s at 160 Hz do not fall on the replay's 6-sample chunks: the straddling chunks are split, so
    a recording exactly as long as the protocol is exactly enough."""
    from neuromusic.drivers.replay_source import ReplaySource

    protocol = "rest:10.1,arithmetic:10.1,rest:10.1,arithmetic:10.1"
    path = _eyes_recording(tmp_path / "exact_raw.fif", 40.4, 10.1)
    config = load_config(overrides={"calibration.protocol": protocol, "calibration.settle_s": 2.0})
    box = _run_bounded(ReplaySource(path, speed=0.0), config)
    assert "error" not in box, box.get("error")
    assert box["outcome"].result.accepted  # type: ignore[attr-defined]


def test_a_replay_that_ends_early_says_how_far_it_got(tmp_path: Path) -> None:
    from neuromusic.drivers.replay_source import ReplaySource
    from neuromusic.models.core.errors import DataError

    protocol = "rest:10,arithmetic:10,rest:10,arithmetic:10"
    config = load_config(overrides={"calibration.protocol": protocol, "calibration.settle_s": 2.0})
    short = _run_bounded(ReplaySource(_eyes_recording(tmp_path / "short_raw.fif", 33.0, 10.0), speed=0.0), config)
    assert isinstance(short["error"], DataError)
    assert "ended 3.0 s into block 4/4" in str(short["error"]) and "7.0 s short" in str(short["error"])
    # Most of the last block is there: the calibration goes on with what was recorded, and says so.
    nearly = _run_bounded(ReplaySource(_eyes_recording(tmp_path / "nearly_raw.fif", 38.0, 10.0), speed=0.0), config)
    assert "error" not in nearly, nearly.get("error")
    assert any("fitting on what was recorded" in line for line in nearly["said"])  # type: ignore[attr-defined]
