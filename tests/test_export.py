"""Export round trips through MNE (and MNE-BIDS) with the recorded data, names, rate, annotations and units."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import mne
import mne_bids
import numpy as np
import pytest
from lab_fixtures import write_session
from neuromusic.daemon.lab.export import export_session
from neuromusic.models.core.errors import DataError
from neuromusic.models.sessions.store import SessionReader


@pytest.fixture
def session(tmp_path: Path) -> tuple[Path, np.ndarray]:
    folder = tmp_path / "20260101-120000-lab1"
    _, data = write_session(folder)
    return folder, data


def test_fif_round_trip_is_exact(session: tuple[Path, np.ndarray]) -> None:
    folder, written = session
    path = export_session(folder, "fif")
    raw = mne.io.read_raw_fif(path, preload=True, verbose="error")
    recorded = SessionReader(folder).eeg().data
    np.testing.assert_array_equal(raw.get_data(), recorded * 1e-6)  # exact: written as double
    np.testing.assert_allclose(recorded, written, rtol=1e-6)  # the recorder stores float32
    assert raw.ch_names == ["EEG1", "EEG2", "EEG3", "EEG4"]
    assert raw.info["sfreq"] == 250.0
    assert set(raw.get_channel_types()) == {"eeg"}
    assert raw.info["chs"][0]["unit"] == mne.io.constants.FIFF.FIFF_UNIT_V
    assert raw.info["meas_date"] is not None
    descriptions = list(raw.annotations.description)
    assert descriptions == ["phase/baseline", "marker/eyes closed", "phase/music", "control/policy"]
    marker_onset = raw.annotations.onset[1]
    assert marker_onset == pytest.approx((10.0 / 3), abs=0.15)  # chunk 33 of 100 x 0.1 s


def test_edf_round_trip_within_quantisation(session: tuple[Path, np.ndarray]) -> None:
    folder, _ = session
    path = export_session(folder, "edf", folder / "out.edf")
    raw = mne.io.read_raw_edf(path, preload=True, verbose="error")
    recorded = SessionReader(folder).eeg().data * 1e-6
    step = (recorded.max(axis=1) - recorded.min(axis=1)) / 65535  # EDF holds 16-bit integers
    assert raw.ch_names == ["EEG1", "EEG2", "EEG3", "EEG4"]
    assert raw.info["sfreq"] == 250.0
    assert raw._orig_units == {name: "µV" for name in raw.ch_names}
    assert np.all(np.abs(raw.get_data() - recorded) <= step[:, None] * 1.01)
    assert "marker/eyes closed" in raw.annotations.description


def test_bids_tree_reads_back(session: tuple[Path, np.ndarray]) -> None:
    folder, _ = session
    root = export_session(folder, "bids", folder.parent / "bids")
    path = mne_bids.BIDSPath(
        subject="lab1", session="20260101120000lab1", task="neurofeedback", datatype="eeg", root=root
    )
    raw = mne_bids.read_raw_bids(path, verbose=False)
    assert raw.ch_names == ["EEG1", "EEG2", "EEG3", "EEG4"]
    assert raw.info["sfreq"] == 250.0
    assert "marker/eyes closed" in raw.annotations.description
    assert (root / "dataset_description.json").exists()


def test_existing_output_is_not_overwritten(session: tuple[Path, np.ndarray]) -> None:
    folder, _ = session
    export_session(folder, "fif")
    with pytest.raises(DataError, match="--overwrite"):
        export_session(folder, "fif")
    export_session(folder, "fif", overwrite=True)


def test_cli_export_and_clear_error(session: tuple[Path, np.ndarray], tmp_path: Path) -> None:
    folder, _ = session
    out = tmp_path / "x_raw.fif"
    cli = [sys.executable, "-m", "neuromusic.daemon.cli"]
    done = subprocess.run(
        [*cli, "export", str(folder), "--format", "fif", "-o", str(out)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert out.exists()
    missing = subprocess.run([*cli, "export", str(tmp_path / "nothing")], capture_output=True, text=True)
    assert missing.returncode == DataError.exit_code
    assert "no session" in missing.stderr and "Traceback" not in missing.stderr


def test_session_without_eeg_is_a_clear_error(tmp_path: Path) -> None:
    from neuromusic.daemon.cli.recording_options import RecordingConfig

    write_session(tmp_path / "noraw", options=RecordingConfig(raw_eeg=False))
    with pytest.raises(DataError, match="holds no EEG"):
        export_session(tmp_path / "noraw", "fif")
