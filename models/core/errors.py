"""The error hierarchy. Every error a user can cause is one of these and carries a message that says what to do."""

from __future__ import annotations


class NeuromusicError(Exception):
    """Base of every error neuromusic raises on purpose. The CLI prints its message, no traceback."""

    exit_code: int = 1


class ConfigError(NeuromusicError):
    """A configuration value or CLI flag is wrong. The message names the TOML key or flag and the allowed values."""

    exit_code = 2


class SourceError(NeuromusicError):
    """An EEG source could not be opened or stopped working."""

    exit_code = 3


class SourceNotFoundError(SourceError):
    """The headset, port or stream was not found."""

    exit_code = 4


class SinkError(NeuromusicError):
    """A music sink (synth, MIDI port, file) failed."""

    exit_code = 5


class ModelError(NeuromusicError):
    """The music model, its checkpoint or tokenizer is missing or does not match."""

    exit_code = 6


class DataError(NeuromusicError):
    """Input data (a session, a recording, a corpus) is unusable."""

    exit_code = 7
