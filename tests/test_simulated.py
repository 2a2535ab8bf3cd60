"""The simulated listener: its physiology, its hidden state, its pacing, and the score tracking it."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from neuromusic.drivers.config import SourceConfig
from neuromusic.drivers.listener_profile import DEFAULT_PROFILE, load_profile, profile_from_dict
from neuromusic.drivers.registry import open_source
from neuromusic.drivers.simulated import ScriptedState, SimulatedListener, aperiodic_sos
from neuromusic.models.core.clock import MonotonicClock, VirtualClock
from neuromusic.models.core.errors import ConfigError
from neuromusic.models.signal.features import FeatureConfig
from neuromusic.models.signal.pipeline import FeaturePipeline
from neuromusic.models.signal.score import RelaxationScorer, ScoreConfig
from scipy import signal


def listener(script: str = "calm:60", seed: int = 0, **profile_changes: object) -> SimulatedListener:
    profile = load_profile() if not profile_changes else _default_with(profile_changes)
    return SimulatedListener(profile, ScriptedState(script), VirtualClock(), seed=seed)


def _default_with(changes: dict[str, object]) -> object:
    import tomllib

    doc = tomllib.loads(DEFAULT_PROFILE.read_text())
    for key, value in changes.items():
        doc[key] = {**doc.get(key, {}), **value}  # type: ignore[dict-item]
    return profile_from_dict(doc)


def band_power(x: np.ndarray, sfreq: float, low: float, high: float) -> np.ndarray:
    f, p = signal.welch(x, fs=sfreq, nperseg=int(2 * sfreq), axis=-1)
    sel = (f >= low) & (f <= high)
    return np.asarray(p[..., sel].sum(axis=-1))


def test_scripted_state_levels_ramps_and_loop() -> None:
    s = ScriptedState("calm:10,stress:10,0.3:5", start=100.0, ramp_s=2.0)
    assert s.relaxation(100.0) == 1.0 and s.relaxation(107.9) == 1.0
    assert s.relaxation(109.0) == pytest.approx(0.5)  # half way down the ramp into stress
    assert s.relaxation(115.0) == 0.0
    assert s.relaxation(122.0) == pytest.approx(0.3)
    assert s.relaxation(125.5) == s.relaxation(100.5)  # loops after 25 s
    anchored = ScriptedState("stress:5,calm:5", ramp_s=0.0)
    assert anchored.relaxation(1000.0) == 0.0 and anchored.relaxation(1006.0) == 1.0  # starts at the first query


@pytest.mark.parametrize("script", ["", "calm", "calm:-3", "happy:10", "1.5:10", "calm:x"])
def test_bad_scripts_are_config_errors(script: str) -> None:
    with pytest.raises(ConfigError, match=r"source.script"):
        ScriptedState(script)


def test_alpha_rises_and_beta_falls_with_relaxation() -> None:
    calm = listener("calm:60", seed=1).generate(250 * 20)
    tense = listener("stress:60", seed=1).generate(250 * 20)
    o1, fz = calm.channel_names.index("O1"), calm.channel_names.index("F3")
    assert band_power(calm.data[o1], 250, 8, 13) > 4 * band_power(tense.data[o1], 250, 8, 13)
    assert band_power(tense.data[fz], 250, 14, 30) > 3 * band_power(calm.data[fz], 250, 14, 30)
    # Alpha is strongest at the back of the head (profile weights).
    assert band_power(calm.data[o1], 250, 8, 13) > 2 * band_power(calm.data[0], 250, 8, 13)
    assert 5 < calm.data.std() < 40  # microvolts, as scalp EEG


@pytest.mark.parametrize("exponent", [1.0, 1.5])
def test_background_follows_a_power_law(exponent: float) -> None:
    rng = np.random.default_rng(0)
    sos = aperiodic_sos(exponent, 250.0)
    x = signal.sosfilt(sos, rng.standard_normal(250 * 200))
    f, p = signal.welch(x, fs=250.0, nperseg=1000)
    sel = (f >= 2) & (f <= 60)
    slope = np.polyfit(np.log10(f[sel]), np.log10(p[sel]), 1)[0]
    assert slope == pytest.approx(-exponent, abs=0.1)


def test_same_seed_same_eeg_different_seed_different_eeg() -> None:
    a, b, c = listener(seed=5), listener(seed=5), listener(seed=6)
    np.testing.assert_array_equal(a.generate(500).data, b.generate(500).data)
    assert not np.allclose(a.generate(500).data, c.generate(500).data)


def test_blinks_and_muscle_bursts_when_enabled() -> None:
    sim = listener("calm:60", blinks={"rate_per_min": 30.0}, muscle={"rate_per_min": 20.0})
    chunk = sim.generate(250 * 60)
    fp1, o1 = chunk.channel_names.index("Fp1"), chunk.channel_names.index("O1")
    # Blinks: large on frontal-polar channels, absent at the back of the head.
    assert np.abs(chunk.data[fp1]).max() > 2 * np.abs(chunk.data[o1]).max()
    pipe = FeaturePipeline(FeatureConfig(), sim.sfreq, sim.channel_names)
    feats = pipe.push(chunk)
    reasons = {r for f in feats for r in f.bad_reasons}
    assert {"eye", "muscle"} <= reasons  # each judged as what it is
    assert {f.bad_reasons[fp1] for f in feats} >= {"eye"}
    assert np.mean([f.good[o1] for f in feats]) > 0.9


def test_pacing_follows_the_clock() -> None:
    clock = VirtualClock(10.0)
    sim = SimulatedListener(load_profile(), ScriptedState("calm:60"), clock, seed=0)
    info = sim.open()
    assert info.kind == "simulated" and info.sfreq == 250.0 and len(info.channel_names) == 8
    assert sim.read(0.0) is None  # no time has passed
    clock.advance(1.0)
    chunk = sim.read(0.0)
    assert chunk is not None and chunk.n_samples == 250
    assert chunk.timestamps[0] == 10.0 and chunk.timestamps[-1] == pytest.approx(10.0 + 249 / 250)
    clock.advance(0.5)
    sim.close()
    clock.advance(2.0)
    sim.open()  # the samples that fell due while closed are skipped, like a headset switched off
    clock.advance(0.2)
    chunk = sim.read(0.0)
    assert chunk is not None and chunk.n_samples == 50 and chunk.timestamps[0] == pytest.approx(13.5)


def test_live_read_on_the_real_clock_delivers_at_the_sampling_rate() -> None:
    sim = SimulatedListener(load_profile(), ScriptedState("calm:60"), MonotonicClock(), seed=0)
    sim.open()
    start = time.monotonic()
    n = 0
    while time.monotonic() - start < 0.5:
        chunk = sim.read(0.1)
        if chunk is not None:
            n += chunk.n_samples
    assert 100 <= n <= 140  # 0.5 s at 250 Hz, give or take one chunk


def test_profile_loader_is_strict_about_its_keys_and_keeps_other_sections(tmp_path: Path) -> None:
    text = DEFAULT_PROFILE.read_text() + "\n[someone_elses]\ngain = 0.5\n"
    (tmp_path / "p.toml").write_text(text)
    profile = load_profile(tmp_path / "p.toml")
    assert profile.sections["someone_elses"] == {"gain": 0.5} and set(profile.rhythms) == {"alpha", "theta", "beta"}
    (tmp_path / "typo.toml").write_text(text.replace("calm_uv = 18.0", "calm_microvolts = 18.0"))
    with pytest.raises(ConfigError, match=r"rhythms.alpha.calm_microvolts"):
        load_profile(tmp_path / "typo.toml")
    (tmp_path / "nyq.toml").write_text(text.replace("sfreq = 250.0", "sfreq = 40.0"))
    with pytest.raises(ConfigError, match="must lie within"):
        load_profile(tmp_path / "nyq.toml")
    with pytest.raises(ConfigError, match="not found"):
        load_profile(tmp_path / "missing.toml")
    (tmp_path / "broken.toml").write_text("[listener\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_profile(tmp_path / "broken.toml")


def test_source_config_options_reach_the_simulator(tmp_path: Path) -> None:
    text = (
        DEFAULT_PROFILE.read_text()
        .replace('channels = ["Fp1", "Fp2", "F3", "F4", "C3", "C4", "O1", "O2"]', 'channels = ["O1", "O2"]')
        .replace("sfreq = 250.0", "sfreq = 128.0")
    )
    (tmp_path / "two.toml").write_text(text)
    config = SourceConfig(board="simulated", listener=tmp_path / "two.toml", script="stress:5,calm:5", seed=3)
    sim = open_source(config, VirtualClock())
    assert isinstance(sim, SimulatedListener)
    assert sim.channel_names == ("O1", "O2") and sim.sfreq == 128.0
    assert sim.hidden_state.relaxation(0.0) == 0.0
    other_seed = open_source(SourceConfig(board="simulated", listener=tmp_path / "two.toml", seed=4), VirtualClock())
    assert isinstance(other_seed, SimulatedListener)
    assert not np.allclose(sim.generate(100).data, other_seed.generate(100).data)


def test_score_tracks_the_hidden_state() -> None:
    """The acceptance check of the signal path: correlation >= 0.8 and lag <= window + 1 s."""
    features = FeatureConfig()
    clock = VirtualClock()
    sim = SimulatedListener(load_profile(), ScriptedState("calm:40,stress:40,0.5:30,calm:30,stress:40"), clock, seed=7)
    pipe = FeaturePipeline(features, sim.sfreq, sim.channel_names)
    scorer = RelaxationScorer(ScoreConfig(), pipe.band_names, sim.channel_names)
    times, values, hidden = [], [], []
    for _ in range(int(300 / 0.2)):  # 300 s in 0.2 s chunks
        for f in pipe.push(sim.generate(50)):
            s = scorer.update(f)
            if s.value is not None:
                times.append(s.t)
                values.append(s.value)
                hidden.append(sim.hidden_state.relaxation(s.t))
    v, h = np.array(values), np.array(hidden)
    assert len(v) > 1000
    step = features.hop_s
    lags = np.arange(0, int(6 / step))
    corr = [np.corrcoef(v[k:], h[: len(h) - k])[0, 1] for k in lags]
    best = int(np.argmax(corr))
    print(f"\nscore vs hidden state: r = {corr[0]:.3f} at lag 0, best r = {corr[best]:.3f} at lag {best * step:.2f} s")
    assert corr[0] >= 0.8 and corr[best] >= 0.8
    assert best * step <= features.window_s + 1.0
