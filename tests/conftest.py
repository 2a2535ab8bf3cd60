"""Shared test set-up.

LSL stays on loopback: before any test runs, LSLAPICFG points at a config that disables IPv6, limits resolves to
this machine and names 127.0.0.1 as the only peer (RESEARCH.md §1), so tests never multicast onto the network.
Subprocesses (LSL outlets) inherit the variable.
"""

from __future__ import annotations

import os
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


def pytest_configure(config: pytest.Config) -> None:
    if "NEUROMUSIC_TEST_LSLAPICFG" not in os.environ:
        folder = Path(tempfile.mkdtemp(prefix="neuromusic-lsl-"))
        path = folder / "lsl_api.cfg"
        path.write_text(LSL_LOOPBACK_CONFIG)
        os.environ["NEUROMUSIC_TEST_LSLAPICFG"] = str(path)
    os.environ["LSLAPICFG"] = os.environ["NEUROMUSIC_TEST_LSLAPICFG"]


@pytest.fixture
def lsl_config() -> Path:
    """The loopback LSL configuration file in force for this test run."""
    return Path(os.environ["LSLAPICFG"])


@pytest.fixture
def rng() -> Iterator[np.random.Generator]:
    """A seeded random generator, the same in every run."""
    yield np.random.default_rng(12345)
