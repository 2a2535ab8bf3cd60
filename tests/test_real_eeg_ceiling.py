"""What separates the states of the shared real recordings at all (benchmarks/real_eeg_ceiling.py).

The clean recording (EEGMAT, eyes-closed rest vs arithmetic) separates on posterior alpha at every posterior
channel; the consumer-headset eye-state recording (UCI) does not, and no model of its band powers generalises from
some of its periods to another: the ceiling of a label-free score there is set by the recording.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np
import pytest
from neuromusic.models.signal.montage import region
from signal_fixtures import load_benchmark, real_eeg_dir


@pytest.fixture(scope="module")
def ceiling() -> ModuleType:
    return load_benchmark("real_eeg_ceiling")


@pytest.fixture(scope="module")
def recordings(ceiling: ModuleType) -> dict[str, Any]:
    return {r.name.split(" ")[0]: r for r in ceiling.real_eeg.shared_recordings(real_eeg_dir(), repeats=1)}


def posterior_alpha_auc(ceiling: ModuleType, recording: Any) -> list[float]:
    run = ceiling.features_of(recording, 2.0)
    y = ceiling.truth(recording, run, 2.0, 0.0)
    posterior = [i for i, name in enumerate(recording.channel_names) if region(name) in ("occipital", "parietal")]
    assert len(posterior) >= 4
    return [ceiling.channel_auc(run.features["alpha share"][:, c], y) for c in posterior]


def test_posterior_alpha_separates_rest_from_arithmetic_in_the_clean_recording(
    ceiling: ModuleType, recordings: dict[str, Any]
) -> None:
    aucs = posterior_alpha_auc(ceiling, recordings["eegmat_Subject19"])
    assert min(aucs) > 0.85, aucs
    assert ceiling.supervised_ceiling(recordings["eegmat_Subject19"]) is None  # two periods: nothing to hold out


def test_the_eye_state_recording_has_no_posterior_alpha_contrast_and_no_model_generalises(
    ceiling: ModuleType, recordings: dict[str, Any]
) -> None:
    recording = recordings["uci_eeg_eye_state_raw.fif.gz"]
    aucs = posterior_alpha_auc(ceiling, recording)
    assert np.all(np.abs(np.array(aucs) - 0.5) < 0.15), aucs
    supervised = ceiling.supervised_ceiling(recording)
    assert supervised is not None and supervised < 0.75
