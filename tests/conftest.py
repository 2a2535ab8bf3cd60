"""Shared test set-up.

LSL stays on loopback: before any test runs, LSLAPICFG points at a config that disables IPv6, limits resolves to
this machine and names 127.0.0.1 as the only peer, so tests never multicast onto the network.
Subprocesses (LSL outlets) inherit the variable.

Nothing per-user is touched: for the whole test session HOME and the XDG base directories (data, config, cache,
state) point into one temporary folder, removed at the end. So a test that starts `neuromusic run` records into it,
not into ~/.local/share/neuromusic/sessions, and matplotlib, music21 or torch caches land there too. Set before any
test module is imported, and inherited by every subprocess a test starts.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

LSL_LOOPBACK_CONFIG = """\
[ports]
IPv6 = disable

[multicast]
ResolveScope = machine

[lab]
KnownPeers = {127.0.0.1}
"""


PER_USER = {
    "HOME": "home",
    "XDG_DATA_HOME": "home/.local/share",
    "XDG_CONFIG_HOME": "home/.config",
    "XDG_CACHE_HOME": "home/.cache",
    "XDG_STATE_HOME": "home/.local/state",
    "MPLCONFIGDIR": "home/.config/matplotlib",
}
_made_home: Path | None = None  # the temporary home this process made (and removes); None when inherited


def pytest_configure(config: pytest.Config) -> None:
    global _made_home
    if "NEUROMUSIC_TEST_HOME" not in os.environ:  # a pytest started by a test keeps its parent's folder
        _made_home = Path(tempfile.mkdtemp(prefix="neuromusic-test-home-"))
        os.environ["NEUROMUSIC_TEST_HOME"] = str(_made_home)
    root = Path(os.environ["NEUROMUSIC_TEST_HOME"])
    for variable, relative in PER_USER.items():
        (root / relative).mkdir(parents=True, exist_ok=True)
        os.environ[variable] = str(root / relative)
    if "NEUROMUSIC_TEST_LSLAPICFG" not in os.environ:
        folder = Path(tempfile.mkdtemp(prefix="neuromusic-lsl-"))
        path = folder / "lsl_api.cfg"
        path.write_text(LSL_LOOPBACK_CONFIG)
        os.environ["NEUROMUSIC_TEST_LSLAPICFG"] = str(path)
    os.environ["LSLAPICFG"] = os.environ["NEUROMUSIC_TEST_LSLAPICFG"]


def pytest_unconfigure(config: pytest.Config) -> None:
    if _made_home is not None:
        shutil.rmtree(_made_home, ignore_errors=True)


@pytest.fixture
def lsl_config() -> Path:
    """The loopback LSL configuration file in force for this test run."""
    return Path(os.environ["LSLAPICFG"])


@pytest.fixture
def rng() -> Iterator[np.random.Generator]:
    """A seeded random generator, the same in every run."""
    yield np.random.default_rng(12345)
