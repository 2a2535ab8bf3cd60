"""Exports carry what the daemon knew about channel quality: bad spans per channel, repaired spikes, bad channels.

The session is real: `neuromusic run` replays the UCI Emotiv recording (real eye and movement artifacts, four
one-sample amplifier glitches the pipeline repairs on all 14 channels) with two electrodes railed on purpose, F7
from 10 s to 100 s (bad for most of the session) and O1 from 50 s to 55 s, and records it. It is exported to FIF,
EDF, BIDS and XDF and read back with MNE, MNE-BIDS and pyxdf.
"""

from __future__ import annotations

import csv
import json
import logging
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import mne
import mne_bids
import numpy as np
import pytest
import pyxdf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lab_fixtures import write_session
from neuromusic.daemon.lab.export import export_session
from neuromusic.daemon.lab.export_quality import (
    MOSTLY_BAD_SHARE,
    parse_hop,
    quality_annotations,
    session_quality,
)
from neuromusic.daemon.lab.export_times import SampleClock, sample_clock
from neuromusic.daemon.lab.export_xdf import quality_stream
from neuromusic.models.sessions.store import SessionReader
from signal_fixtures import real_eeg_dir

UCI = "uci_eeg_eye_state_raw.fif.gz"
SFREQ = 128.0
GLITCHES_S = np.array([898, 10386, 11509, 13179]) / SFREQ  # the recording's amplifier glitches (its README)
RAILED = {"F7": (10.0, 100.0), "O1": (50.0, 55.0)}  # seconds of the recording railed on purpose
RAIL_V = 0.2  # beyond the default rail_uv of 180,000 µV
WINDOW_S, HOP_S = 2.0, 0.25  # the default features.window_s and hop_s the replay runs with


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The UCI recording with F7 and O1 railed, replayed as fast as it goes through the daemon and recorded."""
    work = tmp_path_factory.mktemp("quality")
    raw = mne.io.read_raw_fif(real_eeg_dir() / UCI, preload=True, verbose="error")
    assert raw.info["sfreq"] == SFREQ
    data = raw.get_data()
    for channel, (start, stop) in RAILED.items():
        data[raw.ch_names.index(channel), round(start * SFREQ) : round(stop * SFREQ)] = RAIL_V
    railed = mne.io.RawArray(data, raw.info, verbose="error")
    railed.set_annotations(raw.annotations)  # the eye-state periods: replayed as the session's markers
    railed.save(work / "railed_raw.fif", verbose="error")
    folder = work / "20260101-120000-emotiv"
    command = [sys.executable, "-m", "neuromusic.daemon.cli", "run", "--board", "replay", "--speed", "0"]
    command += ["--file", str(work / "railed_raw.fif"), "--synth", "none", "--session-dir", str(folder)]
    command += ["--device-id", "emotiv"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return folder


def expected_span(channel: str) -> tuple[float, float]:
    """Every window holding a railed sample is excluded: from window_s before the rail to window_s after it."""
    start, stop = RAILED[channel]
    return start - WINDOW_S, stop + WINDOW_S


def railed_spans(onsets: np.ndarray, durations: np.ndarray, texts: list[str], where: list[tuple[str, ...]]) -> dict:
    spans: dict[str, list[tuple[float, float]]] = {}
    for onset, duration, text, channels in zip(onsets, durations, texts, where, strict=True):
        if text == "BAD_railed" and len(channels) == 1:
            spans.setdefault(channels[0], []).append((float(onset), float(onset + duration)))
        elif text.startswith("BAD_railed/"):
            spans.setdefault(text.split("/", 1)[1], []).append((float(onset), float(onset + duration)))
    return spans


def assert_railed_spans(spans: dict[str, list[tuple[float, float]]], tolerance: float = HOP_S) -> None:
    assert sorted(spans) == ["F7", "O1"]  # no other channel was railed, the recording's real artifacts are not
    for channel, found in spans.items():
        assert len(found) == 1, (channel, found)  # one run of hops, merged into one span
        onset, end = found[0]
        first, last = expected_span(channel)
        assert first - 1e-6 <= onset <= first + tolerance, (channel, onset)
        assert last - tolerance <= end <= last + 1e-6, (channel, end)


def assert_repairs_annotated(onsets: np.ndarray, durations: np.ndarray, texts: list[str]) -> None:
    """Each glitch is annotated as a repaired sample on AF3 (never railed), over the hop that counted it."""
    repairs = [(o, d) for o, d, t in zip(onsets, durations, texts, strict=True) if t == "repaired/AF3 n=1"]
    assert len(repairs) == len(GLITCHES_S)
    for glitch, (onset, duration) in zip(GLITCHES_S, sorted(repairs), strict=True):
        assert duration == pytest.approx(HOP_S)
        assert onset - 1 / SFREQ <= glitch < onset + duration, (glitch, onset)


def test_fif_annotates_bad_spans_on_their_channel_and_lists_the_mostly_bad_one(session: Path) -> None:
    raw = mne.io.read_raw_fif(export_session(session, "fif"), verbose="error")
    notes = raw.annotations
    texts = list(notes.description)
    assert_railed_spans(railed_spans(notes.onset, notes.duration, texts, list(notes.ch_names)))
    assert_repairs_annotated(notes.onset, notes.duration, texts)
    assert raw.info["bads"] == ["F7"]
    summary = [t for t in texts if t.startswith("bad-channel/")]
    assert len(summary) == 1, summary
    shares = re.match(r"bad-channel/F7: excluded from the score in (\d+)% of hops: railed (\d+)%", summary[0])
    assert shares, summary  # railed, in the windows of 92 s of the 115 s judged
    assert 75 <= int(shares[2]) <= 85 and int(shares[2]) <= int(shares[1]) < 100
    assert texts.count("marker/eyes_closed") == 12  # the session's own annotations are still there
    # MNE's epoching skips the BAD spans: no epoch overlapping F7's railed span survives, others do
    events = mne.make_fixed_length_events(raw, duration=2.0)
    epochs = mne.Epochs(raw, events, tmin=0.0, tmax=2.0 - 1 / SFREQ, baseline=None, preload=True, verbose="error")
    kept = epochs.events[:, 0] / SFREQ
    first, last = expected_span("F7")
    assert len(kept) > 0 and not np.any((kept + 2.0 > first) & (kept < last))


def test_edf_keeps_the_channel_of_each_annotation(session: Path) -> None:
    raw = mne.io.read_raw_edf(export_session(session, "edf"), verbose="error")
    notes = raw.annotations
    texts = list(notes.description)
    spans = railed_spans(notes.onset, notes.duration, texts, list(notes.ch_names))
    assert_railed_spans(spans, tolerance=HOP_S + 0.01)  # EDF+ stores onsets to the 100 µs, durations likewise
    assert any(t.startswith("bad-channel/F7: excluded from the score") for t in texts)
    assert sum(t == "repaired/AF3 n=1" for t in texts) == len(GLITCHES_S)


def test_bids_marks_the_bad_channel_with_its_reason_and_names_channels_in_events(session: Path) -> None:
    root = export_session(session, "bids", session.parent / "bids")
    path = mne_bids.BIDSPath(
        subject="emotiv", session="20260101120000emotiv", task="neurofeedback", datatype="eeg", root=root
    )
    tsv = next(root.rglob("*_channels.tsv"))
    with tsv.open(encoding="utf-8") as handle:
        rows = {row["name"]: row for row in csv.DictReader(handle, delimiter="\t")}
    assert rows["F7"]["status"] == "bad" and "railed" in rows["F7"]["status_description"]
    assert rows["F7"]["status_description"].startswith("excluded from the score in")
    assert {name for name, row in rows.items() if row["status"] == "bad"} == {"F7"}
    raw = mne_bids.read_raw_bids(path, verbose=False)
    assert raw.info["bads"] == ["F7"]
    notes = raw.annotations
    texts = list(notes.description)
    assert_railed_spans(railed_spans(notes.onset, notes.duration, texts, list(notes.ch_names)), HOP_S + 0.01)
    assert "BAD_railed" not in texts  # events.tsv has no channel column: the name is in the text
    assert sum(t == "repaired/AF3 n=1" for t in texts) == len(GLITCHES_S)


def test_xdf_has_a_quality_stream_on_the_eeg_time_base(session: Path) -> None:
    streams, _ = pyxdf.load_xdf(str(export_session(session, "xdf")), synchronize_clocks=False,
                                dejitter_timestamps=False)  # fmt: skip
    by_name = {s["info"]["name"][0]: s for s in streams}
    eeg = by_name["neuromusic-emotiv-eeg"]
    quality = by_name["neuromusic-emotiv-quality"]
    assert quality["info"]["type"] == ["Markers"] and quality["info"]["channel_format"] == ["string"]
    first_sample = float(eeg["time_stamps"][0])
    marks = [(float(t) - first_sample, row[0]) for t, row in zip(quality["time_stamps"], quality["time_series"],
                                                                  strict=True)]  # fmt: skip
    begins = {text.split()[0]: t for t, text in marks if text.startswith("BAD_railed/") and text.endswith(" begin")}
    ends = {text.split()[0]: t for t, text in marks if text.startswith("BAD_railed/") and text.endswith(" end")}
    assert begins.keys() == ends.keys()
    assert_railed_spans({key.split("/")[1]: [(begins[key], ends[key])] for key in begins}, HOP_S + 1e-6)
    repairs = [t for t, text in marks if text == "repaired/AF3 n=1"]
    assert_repairs_annotated(np.array(repairs), np.full(len(repairs), HOP_S), ["repaired/AF3 n=1"] * len(repairs))
    bads = quality["info"]["desc"][0]["bad_channels"][0]["channel"]
    assert [b["label"][0] for b in bads] == ["F7"]
    assert bads[0]["status_description"][0].startswith("excluded from the score in")


def test_the_mostly_bad_threshold_is_more_than_half_the_hops(session: Path) -> None:
    reader = SessionReader(session)
    quality = session_quality(reader, sample_clock(reader))
    o1 = sum(s.duration for s in quality.spans if s.channel == "O1") / reader.eeg().duration_s
    assert MOSTLY_BAD_SHARE == 0.5 and 0 < o1 < MOSTLY_BAD_SHARE  # O1 was bad, but not for most of the session
    assert [b.channel for b in quality.bad_channels] == ["F7"] and quality.bad_channels[0].share > MOSTLY_BAD_SHARE


# -- sessions without quality, or with a damaged one ---------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["fif", "edf", "bids", "xdf"])
def test_a_session_without_features_exports_as_before(tmp_path: Path, fmt: str) -> None:
    folder = tmp_path / "20260101-120000-lab1"
    write_session(folder)
    (folder / "features.jsonl").unlink()
    written = export_session(folder, fmt)  # type: ignore[arg-type]
    if fmt == "xdf":
        streams, _ = pyxdf.load_xdf(str(written), synchronize_clocks=False, dejitter_timestamps=False)
        assert sorted(s["info"]["name"][0].rsplit("-", 1)[1] for s in streams) == [
            "controls", "eeg", "markers", "score"]  # fmt: skip
        return
    if fmt == "bids":
        path = mne_bids.BIDSPath(subject="lab1", session="20260101120000lab1", task="neurofeedback", datatype="eeg",
                                 root=written)  # fmt: skip
        raw = mne_bids.read_raw_bids(path, verbose=False)
    else:
        raw = mne.io.read_raw(written, verbose="error")
    expected = ["phase/baseline", "marker/eyes closed", "phase/music", "control/policy"]
    assert sorted(raw.annotations.description) == sorted(expected)  # EDF orders simultaneous ones its own way
    assert raw.info["bads"] == []


def test_a_damaged_features_file_loses_only_its_damaged_lines(
    session: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    copy = tmp_path / "damaged"
    shutil.copytree(session, copy, ignore=shutil.ignore_patterns("*.fif", "*.edf", "*.xdf", "bids"))
    lines = (copy / "features.jsonl").read_bytes().split(b"\n")
    lines.insert(len(lines) // 2, b'{"t": 1, "good": [tru')  # a torn line in the middle
    lines.insert(10, b'["not", "an", "object"]')
    lines.insert(20, b'{"t": "late", "good": [false], "bad": {"x": 1}, "repaired_new": "many"}')
    (copy / "features.jsonl").write_bytes(b"\n".join(lines))
    with caplog.at_level(logging.WARNING):
        raw = mne.io.read_raw_fif(export_session(copy, "fif"), verbose="error")
    assert "skip 1 damaged line" in caplog.text
    notes = raw.annotations
    assert_railed_spans(railed_spans(notes.onset, notes.duration, list(notes.description), list(notes.ch_names)))
    assert raw.info["bads"] == ["F7"]


# -- spans from hops -------------------------------------------------------------------------------------------------
def hop(t: float, bad: list[str], repaired: list[int] | None = None) -> bytes:
    record = {"t": t, "source_t": None, "good": [not b for b in bad], "bad": bad, "repaired_new": repaired or [0, 0, 0]}
    return json.dumps(record).encode()


def test_runs_merge_when_their_windows_overlap_and_reasons_keep_apart(tmp_path: Path) -> None:
    ok = ["", "", ""]
    lines = [hop(10.0 + 0.25 * k, ok) for k in range(8)]  # 10.0 .. 11.75
    lines += [hop(12.0, ["railed", "", "flat"]), hop(12.25, ["railed", "", "flat"]), hop(12.5, ["", "", "flat"])]
    lines += [hop(12.75, ["", "", "eye"]), hop(13.0, ["railed", "", ""])]  # one good hop: its windows overlap
    lines += [hop(13.25 + 0.25 * k, ok, [0, 3, 0] if k == 2 else None) for k in range(12)]  # 13.25 .. 16.0
    lines += [hop(16.25, ["railed", "", ""])]  # 3 s after the last: its window starts 1 s after that one's end
    session_folder(tmp_path, lines)
    quality = session_quality(SessionReader(tmp_path), SampleClock.session_only(10.0))
    spans = [(s.channel, s.reason, s.onset, s.end) for s in quality.spans]
    assert spans == [
        ("Fp1", "railed", 0.0, 3.0),  # 12.0-2 (clamped to the first sample) .. 13.0, the good hop between merged
        ("O2", "flat", 0.0, 2.5),
        ("O2", "eye", 0.75, 2.75),  # another reason: its own span, though it touches the flat one
        ("Fp1", "railed", 4.25, 6.25),
    ]
    assert [(r.channel, r.onset, r.duration, r.count) for r in quality.repairs] == [("O1", 3.5, 0.25, 3)]
    assert quality.hops == len(lines) and quality.bad_channels == ()
    texts = [a[2] for a in quality_annotations(quality, CHANNELS, names_in_text=False)]
    assert texts.count("BAD_railed") == 2 and "repaired/O1 n=3" in texts
    assert "BAD_flat/O2" in [a[2] for a in quality_annotations(quality, ["Fp1", "O1"], names_in_text=False)]


# -- the features.jsonl boundary, fuzzed ---------------------------------------------------------------------------
CHANNELS = ["Fp1", "O1", "O2"]
SAFE_TEXT = re.compile(r"^(BAD_[A-Za-z0-9_.-]+(/\w+)?|repaired/\w+ n=\d+|bad-channel/\w+: [^\n]+)$")
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=12,
)
per_channel = st.lists(st.booleans(), min_size=3, max_size=3) | json_values
reasons = st.lists(st.text(max_size=40) | json_values, min_size=3, max_size=3) | json_values
counts = st.lists(st.integers(-5, 10**12) | json_values, min_size=3, max_size=3) | json_values
times = st.floats(0, 1e6) | json_values
records = (
    st.fixed_dictionaries(
        {},
        optional={"t": times, "source_t": times, "good": per_channel, "bad": reasons, "repaired_new": counts},
    )
    | json_values
)


def session_folder(folder: Path, lines: list[bytes]) -> None:
    features = {"channel_names": CHANNELS, "band_names": ["alpha"], "units": "nats"}
    manifest = {"format": "neuromusic-session", "version": 1, "session_id": "fuzz", "t0": 0.0, "eeg": None}
    manifest["features"] = features
    (folder / "manifest.json").write_text(json.dumps(manifest))
    (folder / "config.json").write_text(json.dumps({"features": {"window_s": 2.0, "hop_s": 0.25}}))
    (folder / "features.jsonl").write_bytes(b"".join(line + b"\n" for line in lines))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(records, max_size=12), st.booleans())
def test_malformed_quality_records_never_crash_the_export(entries: list[Any], tear: bool) -> None:
    lines = [json.dumps(e).encode() for e in entries]
    if tear and lines:
        lines.insert(len(lines) // 2, lines[len(lines) // 2][:-1] + b"\xff")  # damage mid-file
    with tempfile.TemporaryDirectory() as tmp:
        session_folder(Path(tmp), lines)
        reader = SessionReader(Path(tmp))
        quality = session_quality(reader, sample_clock(reader))
        parsed = [parse_hop(e, len(CHANNELS)) for e in entries]
        assert quality.hops == sum(h is not None for h in parsed)
        for names_in_text in (False, True):
            for onset, duration, text, channels in quality_annotations(quality, CHANNELS, names_in_text):
                assert onset >= 0 and duration >= 0 and SAFE_TEXT.match(text), text
                assert set(channels) <= set(CHANNELS)
        stream = quality_stream(quality, 0.0, "q", "q")
        assert len(stream.values) == len(stream.timestamps) == 2 * len(quality.spans) + len(quality.repairs)
        assert all(b.share > MOSTLY_BAD_SHARE for b in quality.bad_channels)
