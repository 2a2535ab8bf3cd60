"""BrainFlow boards as Sources: real headsets, SYNTHETIC_BOARD and PLAYBACK_FILE_BOARD (BrainFlow's own fakes).

All BrainFlow calls happen here, on the source worker thread. BrainFlow's board logger is switched off: its errors
reach the user as SourceError / SourceNotFoundError messages that say what to check.
"""

from __future__ import annotations

import logging
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from neuromusic.drivers.base import Connection, SourceInfo
from neuromusic.drivers.config import SourceConfig
from neuromusic.models.core.clock import Clock
from neuromusic.models.core.errors import ConfigError, SourceError, SourceNotFoundError
from neuromusic.models.core.messages import Chunk

log = logging.getLogger(__name__)

_POLL_S = 0.01  # how often read() looks for new samples while waiting
_MIN_CHUNK_S = 0.04  # read() waits for at least this much signal (or max_wait)
_BUFFER_SAMPLES = 450_000  # BrainFlow's ring buffer (its default): 30 minutes at 250 Hz

# Amplitude ranges (µV, 1 Hz high-passed) of boards that are signal generators, not heads, keyed by the board whose
# layout the data has. SYNTHETIC_BOARD (-1) adds sines that grow with the channel index to about 1000 µV peak
# (measured: 15 µV on channel 1 to 780 µV on channel 16, high-passed); scalp EEG that large would be an artifact.
# A playback of a synthetic recording (master_board synthetic) has the same range.
_GENERATOR_MAX_UV = {-1: 1500.0}

# BrainFlow exit codes that mean "the device is not there / cannot be reached" (the rest: "there but unusable").
_NOT_FOUND = {
    "PORT_ALREADY_OPEN_ERROR": "the port is busy: another program (or another neuromusic) holds it",
    "UNABLE_TO_OPEN_PORT_ERROR": "the port could not be opened: check --serial-port / --ip-address and permissions",
    "SER_PORT_ERROR": "the serial port failed: check the dongle is plugged in and --serial-port is right",
    "BOARD_NOT_READY_ERROR": "the headset did not answer: check it is switched on, charged and in range",
    "INITIAL_MSG_ERROR": "the headset did not answer: check it is switched on, charged and in range",
    "SYNC_TIMEOUT_ERROR": "the headset did not answer in time: check it is switched on and in range",
}


def board_shim() -> Any:
    """brainflow.board_shim, imported quietly: its import of pkg_resources warns about things outside our control."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        import brainflow.board_shim

        # The native library loads on first use, through pkg_resources (its warnings again): load it here.
        brainflow.board_shim.BoardControllerDLL.get_instance()
    return brainflow.board_shim


def brainflow_board_names() -> list[str]:
    """Every BrainFlow board as a short lower-case name ("cyton", "muse_2", ...), in BrainFlow's id order."""
    return [_short(b.name) for b in board_shim().BoardIds if b.value >= 0]


def brainflow_board_id(name: str) -> int | None:
    """A BrainFlow board id for a name ("cyton", "CYTON_BOARD") or numeric id ("0"); None if it names none."""
    board_ids = board_shim().BoardIds
    text = name.strip()
    if text.lstrip("-").isdigit():
        value = int(text)
        return value if value in {b.value for b in board_ids} else None
    wanted = text.lower().replace("-", "_")
    for board in board_ids:
        if wanted in (board.name.lower(), _short(board.name)):
            return int(board.value)
    return None


def _short(board_name: str) -> str:
    name = board_name.lower()
    return name[: -len("_board")] if name.endswith("_board") else name


class BrainFlowSource(Connection):
    """One BrainFlow board. `board_id` is BrainFlow's id; `descr_id` the board whose layout the data has (the
    master board for playback files)."""

    def __init__(self, board_id: int, params: Any, name: str, descr_id: int | None = None, loop: bool = False) -> None:
        self.board_id = board_id
        self.params = params
        self.name = name
        self.descr_id = board_id if descr_id is None else descr_id
        self.loop = loop
        self._board: Any = None
        self._rows: list[int] = []
        self._ts_row = 0
        self._info: SourceInfo | None = None
        self._min_chunk = 1
        # A playback file without loop is finite: once every sample in it was delivered, `finished` turns true and
        # the session ends (daemon/session/acquisition.py) instead of calling the end of the file a dropped headset.
        self.samples_in_file: int | None = None
        self._delivered = 0

    def open(self) -> SourceInfo:
        bf = board_shim()
        BoardShim, BrainFlowError = bf.BoardShim, bf.BrainFlowError
        BoardShim.disable_board_logger()
        board = BoardShim(self.board_id, self.params)
        try:
            board.prepare_session()
            if self.loop:
                board.config_board("loopback_true")
            board.start_stream(_BUFFER_SAMPLES)
        except BrainFlowError as error:
            self._release(board)
            raise self._translate(error) from error
        self._board = board
        self._delivered = 0  # a playback board starts its file again from the top
        self._rows = list(BoardShim.get_eeg_channels(self.descr_id))
        self._ts_row = int(BoardShim.get_timestamp_channel(self.descr_id))
        sfreq = float(BoardShim.get_sampling_rate(self.descr_id))
        try:
            names = tuple(BoardShim.get_eeg_names(self.descr_id))
        except BrainFlowError:  # many boards have no electrode names in BrainFlow's description
            names = ()
        if len(names) != len(self._rows):
            names = tuple(f"EEG{i + 1}" for i in range(len(self._rows)))
        self._info = SourceInfo(self.name, sfreq, names, "brainflow", max_uv=_GENERATOR_MAX_UV.get(self.descr_id))
        self._min_chunk = max(1, round(_MIN_CHUNK_S * sfreq))
        return self._info

    def read(self, max_wait: float) -> Chunk | None:
        BrainFlowError = board_shim().BrainFlowError

        if self._board is None or self._info is None:
            raise RuntimeError("read() before open()")
        deadline = time.monotonic() + max(0.0, max_wait)
        try:
            # Wait for about _MIN_CHUNK_S of samples (fewer, larger chunks), or whatever came by the deadline.
            while (count := self._board.get_board_data_count()) < self._min_chunk:
                if time.monotonic() >= deadline:
                    if count == 0:
                        return None
                    break
                time.sleep(_POLL_S)
            data = self._board.get_board_data()  # drains BrainFlow's buffer: (rows, n)
        except BrainFlowError as error:
            raise SourceError(f"{self.name} stopped delivering data: {error}") from error
        self._delivered += int(data.shape[1])
        return Chunk(
            data=np.ascontiguousarray(data[self._rows], dtype=np.float64),
            timestamps=np.ascontiguousarray(data[self._ts_row], dtype=np.float64),
            channel_names=self._info.channel_names,
            sfreq=self._info.sfreq,
        )

    @property
    def finished(self) -> bool:
        """True once a playback file (not looped) has been delivered to its end: no more samples will come."""
        return self.samples_in_file is not None and not self.loop and self._delivered >= self.samples_in_file

    def close(self) -> None:
        board, self._board = self._board, None
        if board is not None:
            self._release(board)

    @staticmethod
    def _release(board: Any) -> None:
        BrainFlowError = board_shim().BrainFlowError

        try:
            if board.is_prepared():
                try:
                    board.stop_stream()
                except BrainFlowError:
                    log.debug("stop_stream failed: the stream was not running", exc_info=True)
                board.release_session()
        except BrainFlowError:
            # close() must work on a connection that already broke; the break itself was reported by read().
            log.debug("releasing the BrainFlow session failed", exc_info=True)

    def _translate(self, error: Any) -> SourceError:
        try:
            code = board_shim().BrainFlowExitCodes(error.exit_code).name
        except ValueError:
            code = str(error.exit_code)
        where = self._where()
        if code in _NOT_FOUND:
            return SourceNotFoundError(f"{self.name}{where}: {_NOT_FOUND[code]} (BrainFlow {code})")
        if code == "ANOTHER_BOARD_IS_CREATED_ERROR":
            return SourceError(f"{self.name}{where}: another session already uses this board (BrainFlow {code})")
        return SourceError(f"{self.name}{where} could not start: {error} (BrainFlow {code})")

    def _where(self) -> str:
        p = self.params
        parts = [f"{k}={getattr(p, k)}" for k in ("serial_port", "mac_address", "ip_address", "file") if getattr(p, k)]
        return f" ({', '.join(parts)})" if parts else ""


def _check_recording(path: Path, master: int, master_name: str) -> None:
    """Refuse a file that is not a BrainFlow CSV of the master board's layout. BrainFlow itself accepts anything and
    then streams nothing, which would look like a headset that went quiet."""
    columns = int(board_shim().BoardShim.get_num_rows(master))
    with path.open("rb") as lines:
        first = next((line for line in lines if line.strip()), b"")
    fields = first.split(b"\t")
    try:
        [float(f) for f in fields]
    except ValueError:
        numeric = False
    else:
        numeric = bool(first.strip())
    if not numeric or len(fields) != columns:
        found = "is empty" if not first.strip() else f"starts with {first[:60].decode(errors='replace').strip()!r}"
        raise SourceError(
            f"{path} is not a BrainFlow recording of master board {master_name!r}: it {found}; expected lines of "
            f"{columns} tab-separated numbers (as BrainFlow's DataFilter.write_file writes). Check --file and "
            f"--master-board"
        )


def create(config: SourceConfig, clock: Clock) -> BrainFlowSource:
    """Registry entry for synthetic, playback and every BrainFlow board name or id."""
    bf = board_shim()
    params = bf.BrainFlowInputParams()
    params.serial_port = config.serial_port
    params.mac_address = config.mac_address
    params.ip_address = config.ip_address
    params.ip_port = config.ip_port
    params.ip_protocol = config.ip_protocol
    params.serial_number = config.serial_number
    params.other_info = config.other_info
    params.timeout = config.timeout
    name = config.board.strip().lower()
    if name == "playback":
        if config.file is None:
            raise ConfigError("--board playback needs --file (a BrainFlow CSV recording)")
        if not config.file.is_file():
            raise SourceNotFoundError(f"playback file not found: {config.file}")
        master = brainflow_board_id(config.master_board)
        fakes = {bf.BoardIds.PLAYBACK_FILE_BOARD.value, bf.BoardIds.STREAMING_BOARD.value, bf.BoardIds.NO_BOARD.value}
        if master is None or master in fakes:
            raise ConfigError(f"source.master_board = {config.master_board!r} is not a BrainFlow board name or id")
        params.file = str(config.file)
        params.master_board = master
        playback_id = int(bf.BoardIds.PLAYBACK_FILE_BOARD.value)
        source = BrainFlowSource(
            playback_id, params, f"BrainFlow playback of {config.file.name}", master, config.playback_loop
        )
        with config.file.open("rb") as lines:  # one sample per non-empty line of a BrainFlow CSV
            source.samples_in_file = sum(1 for line in lines if line.strip())
        _check_recording(config.file, master, config.master_board)
        return source
    board_id = brainflow_board_id("synthetic" if name == "synthetic" else config.board)
    if board_id is None:
        raise ConfigError(f"unknown BrainFlow board {config.board!r}")
    return BrainFlowSource(board_id, params, f"BrainFlow {bf.BoardIds(board_id).name}")
