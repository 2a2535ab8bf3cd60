"""BrainFlow sources on BrainFlow's own fake boards (synthetic and playback), and what bad input gets."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from neuromusic.drivers.brainflow_source import BrainFlowSource, board_shim, brainflow_board_id
from neuromusic.drivers.config import SourceConfig
from neuromusic.drivers.registry import open_source
from neuromusic.models.core.clock import MonotonicClock
from neuromusic.models.core.errors import ConfigError, SourceError, SourceNotFoundError
from neuromusic.models.core.messages import Chunk
from neuromusic.models.signal.features import FeatureConfig
from neuromusic.models.signal.pipeline import FeaturePipeline


def read_for(source: BrainFlowSource, seconds: float) -> list[Chunk]:
    chunks = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        chunk = source.read(0.1)
        if chunk is not None:
            chunks.append(chunk)
    return chunks


def test_synthetic_board_streams_eeg_with_unix_time_stamps() -> None:
    source = open_source(SourceConfig(board="synthetic"), MonotonicClock())
    assert isinstance(source, BrainFlowSource)
    info = source.open()
    try:
        assert info.kind == "brainflow" and info.sfreq == 250.0 and len(info.channel_names) == 16
        chunks = read_for(source, 1.2)
    finally:
        source.close()
    source.close()  # idempotent
    data = np.concatenate([c.data for c in chunks], axis=1)
    stamps = np.concatenate([c.timestamps for c in chunks])
    assert 200 <= data.shape[1] <= 330 and data.shape[0] == 16
    assert abs(stamps[-1] - time.time()) < 5.0 and np.all(np.diff(stamps) >= 0)
    # The feature path runs on it (channel k of the synthetic board is a sine near 5·k Hz plus noise). The board
    # declares its ~1000 µV range, so none of its channels is "out-of-range" by the scalp-EEG default.
    assert info.max_uv is not None and info.max_uv > 1000.0
    pipe = FeaturePipeline.for_source(FeatureConfig(window_s=1.0, hop_s=0.25), info)
    feats = [f for c in chunks for f in pipe.push(c)]
    assert feats and np.isfinite(feats[-1].de[:, feats[-1].good]).all()
    assert feats[-1].good.all(), feats[-1].bad_reasons


def test_the_same_board_can_be_opened_again_after_close() -> None:
    source = open_source(SourceConfig(board="-1"), MonotonicClock())  # numeric id of the synthetic board
    for _ in range(2):
        source.open()
        assert read_for(source, 0.2)
        source.close()


def write_recording(path: Path, n: int) -> np.ndarray:
    """A BrainFlow CSV of the synthetic board's layout holding n samples; returns the EEG rows written."""
    bf = board_shim()
    synthetic = int(bf.BoardIds.SYNTHETIC_BOARD.value)
    eeg_rows = bf.BoardShim.get_eeg_channels(synthetic)
    data = np.zeros((bf.BoardShim.get_num_rows(synthetic), n))
    data[eeg_rows] = (np.arange(len(eeg_rows))[:, np.newaxis] + 1) * 10.0 + np.sin(np.arange(n) / 5.0)
    data[bf.BoardShim.get_timestamp_channel(synthetic)] = 1_700_000_000.0 + np.arange(n) / 250.0
    from brainflow.data_filter import DataFilter

    DataFilter.write_file(data, str(path), "w")
    return np.asarray(data[eeg_rows])


def test_playback_board_replays_a_brainflow_file(tmp_path: Path) -> None:
    path = tmp_path / "session.csv"
    eeg = write_recording(path, 750)  # 3 s at 250 Hz
    source = open_source(SourceConfig(board="playback", file=path), MonotonicClock())
    info = source.open()
    try:
        chunks = read_for(source, 1.0)
    finally:
        source.close()
    got = np.concatenate([c.data for c in chunks], axis=1)
    assert info.sfreq == 250.0 and got.shape[0] == eeg.shape[0] and got.shape[1] > 150
    np.testing.assert_allclose(got[:, :100], eeg[:, :100], atol=1e-4)


@pytest.mark.parametrize("loop", [False, True])
def test_playback_loop_option_starts_the_file_again(tmp_path: Path, loop: bool) -> None:
    write_recording(tmp_path / "short.csv", 100)  # 0.4 s
    source = open_source(
        SourceConfig(board="playback", file=tmp_path / "short.csv", playback_loop=loop), MonotonicClock()
    )
    source.open()
    try:
        n = sum(c.n_samples for c in read_for(source, 1.0))
    finally:
        source.close()
    assert n > 150 if loop else n <= 100


def test_playback_needs_an_existing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--file"):
        open_source(SourceConfig(board="playback"), MonotonicClock())
    with pytest.raises(SourceNotFoundError, match="playback file not found"):
        open_source(SourceConfig(board="playback", file=tmp_path / "nope.csv"), MonotonicClock())
    (tmp_path / "x.csv").write_text("1\t2\n")
    with pytest.raises(ConfigError, match="master_board"):
        open_source(SourceConfig(board="playback", file=tmp_path / "x.csv", master_board="toaster"), MonotonicClock())


@pytest.mark.parametrize(
    ("text", "found"), [("a,b,c\n", "starts with 'a,b,c'"), ("\n\n", "is empty"), ("1\t2\t3\n", "starts with")]
)
def test_a_file_that_is_not_a_brainflow_recording_is_refused(tmp_path: Path, text: str, found: str) -> None:
    """BrainFlow would accept it and stream nothing, which looks like a headset gone quiet: refuse it up front."""
    path = tmp_path / "notes.csv"
    path.write_text(text)
    with pytest.raises(SourceError, match=f"not a BrainFlow recording of master board 'synthetic': it {found}"):
        open_source(SourceConfig(board="playback", file=path), MonotonicClock())


def test_a_recording_of_another_board_layout_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "session.csv"
    write_recording(path, 10)  # the synthetic board's 32 columns
    with pytest.raises(SourceError, match=r"master board 'cyton'.*expected lines of 24 tab-separated numbers"):
        open_source(SourceConfig(board="playback", file=path, master_board="cyton"), MonotonicClock())


def test_a_headset_that_is_not_there_is_source_not_found_with_what_to_check() -> None:
    source = open_source(SourceConfig(board="cyton", serial_port="/dev/neuromusic-no-such-port"), MonotonicClock())
    with pytest.raises(SourceNotFoundError, match=r"CYTON_BOARD.*no-such-port.*check --serial-port") as info:
        source.open()
    assert info.value.exit_code == 4
    source.close()  # nothing held after a failed open


def test_an_unusable_board_is_a_source_error() -> None:
    source = open_source(SourceConfig(board="ganglion", serial_port="/dev/neuromusic-no-such-port"), MonotonicClock())
    with pytest.raises(SourceError, match="GANGLION_BOARD"):
        source.open()


def test_unknown_board_names_list_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown board 'toaster'.*synthetic, playback, lsl, simulated.*cyton") as e:
        open_source(SourceConfig(board="toaster"), MonotonicClock())
    assert e.value.exit_code == 2
    with pytest.raises(ConfigError, match="unknown board '9999'"):
        open_source(SourceConfig(board="9999"), MonotonicClock())


def test_board_names_ids_and_input_params() -> None:
    assert brainflow_board_id("cyton") == brainflow_board_id("CYTON_BOARD") == brainflow_board_id("0") == 0
    assert brainflow_board_id("muse-2") == brainflow_board_id("MUSE_2_BOARD")
    config = SourceConfig(
        board="cyton_wifi",
        ip_address="10.0.0.7",
        ip_port=6677,
        ip_protocol=2,
        timeout=3,
        serial_number="abc",
        other_info="x",
        mac_address="00:11",
    )
    source = open_source(config, MonotonicClock())
    assert isinstance(source, BrainFlowSource)
    p = source.params
    assert (p.ip_address, p.ip_port, p.ip_protocol, p.timeout, p.serial_number, p.other_info, p.mac_address) == (
        "10.0.0.7",
        6677,
        2,
        3,
        "abc",
        "x",
        "00:11",
    )
