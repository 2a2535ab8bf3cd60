"""Where the spine, the signal path and the lab meet: one time base, finite sources ending the run, tests kept out of
the home folder, the calibration model scoring a run, one profile key."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import pwd
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from neuromusic.daemon import cli
from neuromusic.daemon.cli.recording_options import default_sessions_root
from neuromusic.daemon.config import load_config
from neuromusic.daemon.services.json_output import JsonOutput
from neuromusic.daemon.session.context import SessionContext
from neuromusic.daemon.session.profile_store import ProfileStore, rest_model_from_section
from neuromusic.daemon.session.runner import Session
from neuromusic.drivers.listener_profile import load_profile
from neuromusic.drivers.simulated import ScriptedState, SimulatedListener
from neuromusic.models.core.clock import VirtualClock
from neuromusic.models.core.errors import ConfigError, DataError
from neuromusic.models.core.messages import Features, Score
from neuromusic.models.sessions.store import SessionReader
from neuromusic.models.signal.calibration import relaxation
from neuromusic.models.signal.score import RelaxationScorer, ScoreConfig
from test_brainflow_source import write_recording

CLI = [sys.executable, "-m", "neuromusic.daemon.cli"]
SPINE_ONLY = "player,recorder,telemetry"
SCRIPT = "calm:16,stress:16"  # the hidden state of the replayed recording: calm, a 4 s ramp, stressed


def collect(session: Session, *types: type) -> list[Any]:
    """Everything of `types` the session publishes, in order (read after run() returns)."""
    subscription = session.hub.subscribe(*types, maxsize=100_000)
    out: list[Any] = []
    original = subscription.queue.put_nowait

    def keep(message: Any) -> None:
        out.append(message)
        original(message)

    subscription.queue.put_nowait = keep  # type: ignore[method-assign]
    return out


def simulated_fif(path: Path, script: str, seconds: float, seed: int = 3) -> Path:
    """A recording of the simulated listener as a FIF file (what `--board replay` reads), sample i at i / sfreq."""
    import mne

    listener = SimulatedListener(load_profile(None), ScriptedState(script), VirtualClock(), seed=seed)
    info = listener.open()
    chunk = listener.generate(round(seconds * info.sfreq))
    raw = mne.io.RawArray(
        chunk.data * 1e-6, mne.create_info(list(info.channel_names), info.sfreq, "eeg"), verbose="error"
    )
    raw.save(path, verbose="error")
    return path


# -- 1. one time base ----------------------------------------------------------------------------------------------
async def test_features_and_scores_are_on_the_session_clock_with_the_source_time_beside(tmp_path: Path) -> None:
    # BrainFlow's synthetic board stamps samples with unix time; the session clock is monotonic: far apart.
    overrides = {
        "source.board": "synthetic",
        "score.baseline_s": 0.5,
        "features.window_s": 1.0,
        "session.duration_s": 2.5,
        "session.session_dir": str(tmp_path / "rec"),
    }
    session = Session(load_config(None, overrides), services=["recorder"])
    seen = collect(session, Features, Score)
    started = session.clock.now()
    result = await asyncio.wait_for(session.run(), timeout=20)
    ended = session.clock.now()
    assert result.exit_code == 0
    features = [m for m in seen if isinstance(m, Features)]
    scores = [m for m in seen if isinstance(m, Score)]
    assert features and any(s.state == "scoring" for s in scores)
    for message in seen:
        assert started <= message.t <= ended, f"{type(message).__name__}.t = {message.t} is not on the session clock"
    assert all(a.t <= b.t for a, b in itertools.pairwise(scores))  # one time line, in order
    now_unix = time.time()
    for f in features:
        assert f.source_t is not None and abs(f.source_t - now_unix) < 30  # BrainFlow's own clock, kept beside
    for s in scores:
        if s.state in ("scoring", "poor-signal"):
            assert s.source_t is not None and abs(s.source_t - now_unix) < 30
        if s.state == "stale":
            assert s.source_t is None
    # JSON lines: `source_t` is the source's clock, `t` unix write time.
    ctx = SessionContext(session.config, session.hub, session.clock, session.control, "x", None)
    line = JsonOutput(ctx).line(next(s for s in scores if s.state == "scoring"))
    assert abs(line["source_t"] - now_unix) < 30 and abs(line["t"] - now_unix) < 30
    # The recording: `t` on the session clock (as for every other stream), `source_t` beside it, no `tr`.
    reader = SessionReader(tmp_path / "rec")
    for stream in (reader.scores(), reader.features()):
        assert stream and all("tr" not in r for r in stream)
        assert all(reader.t0 - 1 <= r["t"] <= reader.t0 + 30 for r in stream)
    assert any(r["source_t"] is not None and abs(r["source_t"] - now_unix) < 30 for r in reader.scores())


def test_the_scorer_smooths_on_source_time_so_replay_speed_does_not_matter() -> None:
    bands, channels = ("theta", "alpha", "beta"), ("O1", "O2")

    def features(t: float, source_t: float, alpha: float) -> Features:
        de = np.full((3, 2), 1.0)
        de[1] += alpha
        return Features(t, de, bands, channels, np.ones(2, bool), ("", ""), source_t=source_t)

    values = []
    for session_step in (0.25, 0.001):  # real time, and a replay read as fast as possible
        scorer = RelaxationScorer(ScoreConfig(baseline_s=1.0, smoothing_s=2.0), bands, channels)
        rng = np.random.default_rng(0)
        out = []
        for k in range(24):
            score = scorer.update(features(100.0 + k * session_step, k * 0.25, float(rng.normal(0, 0.1)) + (k > 12)))
            assert score.t == 100.0 + k * session_step and score.source_t == k * 0.25
            out.append(score.value)
        values.append(out)
    assert values[0] == values[1]


# -- 2. a finite source ends the run ---------------------------------------------------------------------------------
def test_a_replay_that_runs_out_ends_the_run_cleanly(tmp_path: Path) -> None:
    recording = simulated_fif(tmp_path / "short_raw.fif", "calm:60", 5.0)
    command = [*CLI, "run", "--board", "replay", "--file", str(recording), "--speed", "0", "--json"]
    started = time.monotonic()
    done = subprocess.run(
        [*command, "--baseline", "1", "--duration", "120", "--without", SPINE_ONLY],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - started < 40  # not the 120 s of --duration
    assert "ended" in done.stderr and "replay" in done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    scored = [line for line in lines if line["state"] == "scoring"]
    # Every window of the file was scored before the end, the last one ending at the file's last sample.
    assert len(scored) >= (5.0 - 2.0 - 1.0) / 0.25
    assert max(line["source_t"] for line in scored) == pytest.approx(5.0 - 1 / 250.0, abs=0.01)


async def test_a_brainflow_playback_file_without_loop_ends_the_session(tmp_path: Path) -> None:
    write_recording(tmp_path / "take.csv", 500)  # 2 s at 250 Hz, played back in real time
    overrides = {"source.board": "playback", "source.file": str(tmp_path / "take.csv"), "session.duration_s": 30.0}
    session = Session(load_config(None, overrides), services=[])
    result = await asyncio.wait_for(session.run(), timeout=20)
    assert result.exit_code == 0 and "ended" in result.reason and result.duration_s < 8
    assert session.acquisition.state == "stopped" and session.acquisition.reconnects == 0


# -- 3. tests stay out of the home folder ----------------------------------------------------------------------------
def test_per_user_folders_point_into_a_temporary_folder_here_and_in_subprocesses() -> None:
    real_home = Path(pwd.getpwuid(os.getuid()).pw_dir)
    assert not default_sessions_root().is_relative_to(real_home)
    assert not Path.home().is_relative_to(real_home)
    probe = "from neuromusic.daemon.cli.recording_options import default_sessions_root as d; print(d())"
    child = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=30, check=True)
    assert Path(child.stdout.strip()) == default_sessions_root()
    for variable in ("XDG_CONFIG_HOME", "XDG_CACHE_HOME", "MPLCONFIGDIR"):
        assert not Path(os.environ[variable]).is_relative_to(real_home)


# -- 4. the calibration model scores the run -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def calibrated_profile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("profile") / "me.json"
    protocol = "rest:20,arithmetic:20,rest:20,arithmetic:20"
    args = ["calibrate", "--board", "simulated", "--fast", "--no-audio", "--no-record", "--seed", "1"]
    assert cli.main([*args, "--protocol", protocol, "--profile", str(path)]) == 0
    return path


async def test_run_with_a_calibrated_profile_scores_with_the_model(tmp_path: Path, calibrated_profile: Path) -> None:
    section = json.loads(calibrated_profile.read_text())["calibration"]
    recording = simulated_fif(tmp_path / "listener_raw.fif", SCRIPT, 32.0)
    overrides = {
        "source.board": "replay",
        "source.file": str(recording),
        "source.replay_speed": 0.0,
        "session.profile": str(calibrated_profile),
        "session.duration_s": 120.0,
        "score.smoothing_s": 0.0,  # so each value is exactly the model's P(rest) for its window
    }
    session = Session(load_config(None, overrides), services=[])
    seen = collect(session, Features, Score)
    result = await asyncio.wait_for(session.run(), timeout=60)
    assert result.exit_code == 0 and "ended" in result.reason
    pairs = []
    last_features: Features | None = None
    for message in seen:
        if isinstance(message, Features):
            last_features = message
        elif message.state != "stale" and last_features is not None and message.source_t == last_features.source_t:
            pairs.append((last_features, message))
    assert len(pairs) >= 100
    assert all(score.state == "scoring" for _, score in pairs)  # no baseline phase: scored from the first window
    for features, score in pairs:
        de = np.where(features.good[None, :], features.de, np.nan)
        assert score.value == pytest.approx(relaxation(section, de), abs=1e-9)
    # ... and it tracks the hidden state.
    state = ScriptedState(SCRIPT)
    hidden = np.array([state.relaxation(float(s.source_t)) for _, s in pairs])
    values = np.array([s.value for _, s in pairs])
    calm, stressed = values[hidden >= 0.99], values[hidden <= 0.01]
    r = float(np.corrcoef(hidden, values)[0, 1])
    print(f"calibrated run: r = {r:.3f}, mean P(rest) calm {calm.mean():.3f}, stressed {stressed.mean():.3f}")
    assert r > 0.8 and calm.mean() > 0.8 and stressed.mean() < 0.2
    # The profile is saved back without losing the model.
    assert json.loads(calibrated_profile.read_text())["calibration"] == section


def test_a_calibration_model_for_another_layout_or_a_broken_one_is_refused(calibrated_profile: Path) -> None:
    store = ProfileStore.load(calibrated_profile)
    model = rest_model_from_section(store.get("calibration"), store.path)
    bands = tuple(load_config(None, {}).features.bands)
    with pytest.raises(DataError, match="no channel in common"):
        RelaxationScorer(ScoreConfig(), bands, ("T7", "T8"), rest_model=model)
    with pytest.raises(DataError, match="band"):
        RelaxationScorer(ScoreConfig(weights={"alpha": 1.0}), ("alpha",), model.channel_names, rest_model=model)
    broken = dict(store.get("calibration"), weights=[1.0, 2.0])
    with pytest.raises(ConfigError, match="calibration section is malformed"):
        rest_model_from_section(broken, store.path)
    # A channel the source lacks counts as the model's mean: scoring goes on, with less confidence.
    scorer = RelaxationScorer(ScoreConfig(), bands, model.channel_names[:-1], rest_model=model)
    de = np.full((len(bands), len(model.channel_names) - 1), 2.0)
    good = np.ones(len(model.channel_names) - 1, bool)
    score = scorer.update(Features(0.0, de, bands, model.channel_names[:-1], good, ("",) * len(good)))
    assert score.state == "scoring" and score.confidence == 1.0


# -- 5. one profile key -----------------------------------------------------------------------------------------------
def test_score_profile_key_is_gone_and_session_profile_is_the_one_way(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="profile"):
        load_config(None, {"score.profile": str(tmp_path / "p.json")})
    assert load_config(None, {"session.profile": str(tmp_path / "p.json")}).session.profile == tmp_path / "p.json"
