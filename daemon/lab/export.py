"""Export a recorded session to FIF, EDF, BIDS or XDF so it opens in MNE, EEGLAB, EDFbrowser, BIDS and LSL tools.

What goes out: the raw EEG in volts (channel type EEG, the recorded channel names and sampling rate), the start of
the recording as the measurement date, and annotations for every marker, phase and control change (markers
"marker/<label>", phases "phase/<name>", controls "control/<what>"). Onsets are seconds from the first sample, each
at the sample received when the event happened (daemon/lab/export_times.py), so they hold for a replay at any speed;
a replayed file's own markers land on the samples the file has them at. Events before the first sample or after the
last are left out.
FIF keeps the float32 samples exactly (written as double); EDF stores 16-bit integers, so it is exact to within
(physical range) / 65535 per channel; BIDS writes EDF inside a BIDS tree (sub-<id>/ses-<id>/eeg/); XDF holds the EEG
(float32, exact), score, controls and markers as the streams `--lsl-out` publishes (daemon/lab/export_xdf.py).

What the daemon knew about channel quality goes out too (daemon/lab/export_quality.py, from features.jsonl):
  - "BAD_<reason>" annotations over every span a channel was excluded from the score ("railed", "flat", ...), from
    the start of the first excluded window to the end of the last; MNE's epoching skips annotations starting with
    BAD. FIF and EDF tie each to its channel (Annotations.ch_names; MNE writes EDF's as "<text>@@<channel>" and reads
    it back); BIDS events.tsv has no channel column, so there the text is "BAD_<reason>/<channel>".
  - "repaired/<channel> n=<samples>" over the hop whose spike samples were repaired (the channel stayed usable).
  - channels excluded in more than half the hops (MOSTLY_BAD_SHARE): FIF info["bads"]; BIDS channels.tsv status "bad"
    with the reasons as status_description; and in every format a "bad-channel/<channel>: excluded from the score in
    80% of hops: railed 75%, ..." annotation at 0 s (EDF has no other place for it).
  - XDF: a string stream <prefix>-<device>-quality (daemon/lab/export_xdf.py).
A session without features.jsonl exports as before.
"""

from __future__ import annotations

import datetime
import warnings
from pathlib import Path
from typing import Any, Literal

from neuromusic.daemon.lab.export_quality import SessionQuality, quality_annotations, session_quality
from neuromusic.daemon.lab.export_times import SampleClock, event_offsets, sample_clock
from neuromusic.models.core.errors import DataError
from neuromusic.models.sessions.store import SessionReader

ExportFormat = Literal["fif", "edf", "bids", "xdf"]
FORMATS: tuple[ExportFormat, ...] = ("fif", "edf", "bids", "xdf")
ANNOTATED_KINDS = ("marker", "phase", "control")


def session_annotations(reader: SessionReader, clock: SampleClock | None = None) -> list[tuple[float, str]]:
    """(onset seconds from the first sample, description) for markers, phases and control changes, each at the
    sample received when it happened (daemon/lab/export_times.py); those outside the recording are left out."""
    clock = clock or sample_clock(reader)
    out = []
    for event, onset in zip(reader.events(), event_offsets(clock, reader), strict=True):
        kind = str(event.get("kind", ""))
        if kind not in ANNOTATED_KINDS:
            continue
        label = str(event.get("data", {}).get("what", "")) if kind == "control" else str(event.get("text", ""))
        if 0.0 <= onset <= clock.duration:
            out.append((float(onset), f"{kind}/{label}"))
    return out


def to_raw(reader: SessionReader, names_in_text: bool = False) -> tuple[Any, SessionQuality]:
    """The session's EEG as an mne.io.RawArray (volts) with annotations, bad channels and the measurement date, and
    the quality they were made from. `names_in_text`: channel names in the quality annotations' texts (BIDS)."""
    import mne

    eeg = reader.eeg()
    if eeg.n_samples == 0:
        raise DataError(f"{reader.folder}: the session holds no EEG samples to export")
    info = mne.create_info(list(eeg.channel_names), eeg.sfreq, ch_types="eeg")
    raw = mne.io.RawArray(eeg.data * 1e-6, info, verbose="error")
    clock = sample_clock(reader)
    if reader.wall_t0 > 0:
        wall = reader.wall_t0 + (clock.start - reader.t0)
        raw.set_meas_date(datetime.datetime.fromtimestamp(wall, tz=datetime.UTC))
    quality = session_quality(reader, clock)
    marks: list[tuple[float, float, str, tuple[str, ...]]] = [
        (t, 0.0, text, ()) for t, text in session_annotations(reader, clock)
    ]
    for onset, duration, text, where in quality_annotations(quality, raw.ch_names, names_in_text):
        if onset <= eeg.duration_s:  # placed by the session clock, a hop may end after the last recorded sample
            marks.append((onset, min(duration, eeg.duration_s - onset), text, where))
    if marks:
        onsets, durations, texts, channels = zip(*sorted(marks, key=lambda m: m[0]), strict=True)
        raw.set_annotations(mne.Annotations(list(onsets), list(durations), list(texts), ch_names=list(channels)))
    raw.info["bads"] = [bad.channel for bad in quality.bad_channels if bad.channel in raw.ch_names]
    return raw, quality


def default_output(reader: SessionReader, fmt: ExportFormat) -> Path:
    if fmt == "bids":
        return reader.folder / "bids"
    suffix = {"fif": "_raw.fif", "edf": ".edf", "xdf": ".xdf"}[fmt]  # MNE expects FIF names to end in raw.fif
    return reader.folder / f"{reader.session_id}{suffix}"


def export_session(folder: Path, fmt: ExportFormat, output: Path | None = None, overwrite: bool = False) -> Path:
    """Write the session in `fmt`; returns the file (or BIDS root) written."""
    if fmt not in FORMATS:
        raise DataError(f"unknown export format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    reader = SessionReader(folder)
    target = Path(output) if output is not None else default_output(reader, fmt)
    if fmt != "bids" and target.exists() and not overwrite:
        raise DataError(f"{target} exists; pass --overwrite or another -o PATH")
    target.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "xdf":
        from neuromusic.daemon.lab.export_xdf import export_xdf

        return export_xdf(reader, target)
    raw, quality = to_raw(reader, names_in_text=fmt == "bids")
    if fmt == "fif":
        if not target.name.endswith(("raw.fif", "raw.fif.gz", "_eeg.fif")):
            raise DataError(f"a FIF export must end in _raw.fif (MNE's naming rule), got {target.name}")
        raw.save(target, fmt="double", overwrite=True, verbose="error")
    elif fmt == "edf":
        import mne

        mne.export.export_raw(target, raw, fmt="edf", overwrite=True, verbose="error")
    else:
        _write_bids(reader, raw, quality, target, overwrite)
    return target


def _write_bids(reader: SessionReader, raw: Any, quality: SessionQuality, root: Path, overwrite: bool) -> None:
    import mne
    import mne_bids

    subject = "".join(c for c in str(reader.manifest.get("device_id") or "01") if c.isalnum()) or "01"
    session = "".join(c for c in reader.session_id if c.isalnum())
    path = mne_bids.BIDSPath(subject=subject, session=session, task="neurofeedback", datatype="eeg", root=root)
    raw.info["line_freq"] = 50  # BIDS requires a value; the recording's notch setting is in config.json
    # as `--format edf` (verbose="error"): EDF pads its last block (the docs say so); nothing on stdout but the path
    with warnings.catch_warnings(), mne.use_log_level("error"):
        warnings.filterwarnings("ignore", message="EDF format requires equal-length data blocks")
        mne_bids.write_raw_bids(raw, path, format="EDF", allow_preload=True, overwrite=overwrite, verbose=False)
    bads = [bad for bad in quality.bad_channels if bad.channel in raw.ch_names]
    if bads:  # write_raw_bids marks info["bads"] bad in channels.tsv; the reasons go in status_description
        names = [bad.channel for bad in bads]
        reasons = [bad.description() for bad in bads]
        mne_bids.mark_channels(path, ch_names=names, status=["bad"] * len(bads), descriptions=reasons, verbose=False)
