"""LSL source against a real pylsl outlet in a subprocess, on loopback (LSLAPICFG from conftest.py)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import numpy as np
import pytest
from lsl_fixtures import start_outlet, stop_outlet
from neuromusic.drivers.config import SourceConfig
from neuromusic.drivers.lsl_source import LSLSource, predicate
from neuromusic.drivers.registry import open_source
from neuromusic.models.core.clock import MonotonicClock
from neuromusic.models.core.errors import ConfigError, SourceError, SourceNotFoundError
from neuromusic.models.core.messages import Chunk


@pytest.fixture
def stream_name() -> str:
    return f"nm-test-{uuid.uuid4().hex[:8]}"  # unique, so parallel or leftover outlets never match


@pytest.fixture
def outlets() -> Iterator[list[object]]:
    started: list[object] = []
    yield started
    for proc in started:
        stop_outlet(proc)  # type: ignore[arg-type]


def read_samples(source: LSLSource, n: int, timeout: float = 5.0) -> list[Chunk]:
    chunks: list[Chunk] = []
    end = time.monotonic() + timeout
    while sum(c.n_samples for c in chunks) < n and time.monotonic() < end:
        chunk = source.read(0.1)
        if chunk is not None:
            chunks.append(chunk)
    return chunks


def test_reads_a_real_outlet_with_labels_and_local_time_stamps(stream_name: str, outlets: list[object]) -> None:
    outlets.append(start_outlet(stream_name, "sid-a"))
    source = open_source(SourceConfig(board="lsl", lsl_name=stream_name, lsl_source_id="sid-a"), MonotonicClock())
    assert isinstance(source, LSLSource)
    info = source.open()
    try:
        assert info.kind == "lsl" and info.sfreq == 250.0 and info.channel_names == ("C1", "C2", "C3", "C4")
        assert "sid-a" in info.name
        chunks = read_samples(source, 250)
    finally:
        source.close()
    data = np.concatenate([c.data for c in chunks], axis=1)
    stamps = np.concatenate([c.timestamps for c in chunks])
    assert data.shape[0] == 4 and data.shape[1] >= 250
    # channel c is a 20 µV sine plus c: its mean is c, its peak about 20
    np.testing.assert_allclose(data.mean(axis=1), [0, 1, 2, 3], atol=2.0)
    assert 18 < np.abs(data[0]).max() < 21
    import pylsl

    assert abs(stamps[-1] - pylsl.local_clock()) < 1.0  # mapped onto this machine's LSL clock
    assert np.all(np.diff(stamps) > 0)


def test_volts_are_converted_to_microvolts(stream_name: str, outlets: list[object]) -> None:
    outlets.append(start_outlet(stream_name, "sid-v", unit="volts"))
    source = LSLSource(stream_name, "EEG", "sid-v", 5.0)
    source.open()
    try:
        data = np.concatenate([c.data for c in read_samples(source, 100)], axis=1)
    finally:
        source.close()
    assert 18 < np.abs(data[0]).max() < 21


def test_an_unknown_unit_is_refused_with_the_units_that_work(stream_name: str, outlets: list[object]) -> None:
    outlets.append(start_outlet(stream_name, "sid-u", unit="furlongs"))
    source = LSLSource(stream_name, "EEG", "sid-u", 5.0)
    with pytest.raises(SourceError, match=r"\['furlongs'\].*microvolts \(uV\), millivolts \(mV\) or volts \(V\)"):
        source.open()
    source.close()  # nothing held; still safe


def test_a_vanished_outlet_is_a_source_error_and_a_restarted_one_is_picked_up(
    stream_name: str, outlets: list[object]
) -> None:
    proc = start_outlet(stream_name, "sid-r")
    source = LSLSource(stream_name, "EEG", "sid-r", 5.0)
    source.open()
    assert read_samples(source, 50)
    stop_outlet(proc)
    lost_at = time.monotonic()
    with pytest.raises(SourceError, match="was lost"):
        for _ in range(100):
            source.read(0.1)
    assert time.monotonic() - lost_at < 2.0  # well inside the daemon's 2 s staleness limit
    source.close()
    # The same sender comes back (same source_id): a fresh open() finds it and data flows again.
    outlets.append(start_outlet(stream_name, "sid-r"))
    source.open()
    try:
        assert sum(c.n_samples for c in read_samples(source, 50)) >= 50
    finally:
        source.close()


def test_no_such_stream_is_source_not_found_after_the_resolve_timeout(stream_name: str) -> None:
    source = open_source(SourceConfig(board="lsl", lsl_name=stream_name, resolve_timeout_s=1.0), MonotonicClock())
    start = time.monotonic()
    with pytest.raises(SourceNotFoundError, match=f"name='{stream_name}'.*1 s.*neuromusic devices"):
        source.open()
    assert time.monotonic() - start < 3.0


def test_resolve_timeout_below_one_second_is_refused() -> None:
    from neuromusic.daemon.config import load_config

    with pytest.raises(ConfigError, match="resolve_timeout_s must be >= 1"):
        load_config(None, {"source.resolve_timeout_s": 0.5})


def test_lsl_criteria_are_checked() -> None:
    assert predicate("a", "EEG", "") == "name='a' and type='EEG'"
    with pytest.raises(ConfigError, match="at least one of"):
        LSLSource("", "", "")
    with pytest.raises(ConfigError, match="quote"):
        LSLSource("it's", "EEG", "")
