"""Load torch's native library without holding the GIL, before torch is imported on a background thread.

Importing an extension module holds the GIL while the dynamic linker maps it and its dependencies and runs their
static initialisers. For torch that is libtorch_cpu (over 400 MB, thousands of operators registered at load): the
GIL is held for 0.3-0.8 s in one piece, and the event loop, which keeps the music's time, stands still meanwhile
(a bar composed then starts late, notes due then go out late). A foreign call through ctypes releases the GIL, so
calling the C library's `dlopen` on libtorch_cpu first does that work while the event loop runs; `import torch`
then finds the library loaded and only initialises its Python bindings (tens of milliseconds).

Linux only (other systems import as usual). Any failure only means the import does the loading itself.
"""

from __future__ import annotations

import ctypes
import importlib.util
import logging
import os
import sys
from pathlib import Path

log = logging.getLogger(__name__)

# torch's own C++ library: no Python inside, so its initialisers are safe to run without the GIL. (Not
# libtorch_python: its initialisers belong to the Python side and run under the import.)
NATIVE_LIBRARY = "libtorch_cpu.so"
RTLD_NOW = 2  # resolve every symbol now (the linker work the import would otherwise do under the GIL)

_handles: list[int] = []  # kept open for the life of the process, as the import will keep the library


def torch_library() -> Path | None:
    """Where torch's native library is installed, found without importing torch; None when it is not there."""
    if "torch" in sys.modules:
        return None  # already imported: nothing left to load
    try:
        spec = importlib.util.find_spec("torch")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "lib" / NATIVE_LIBRARY
    return path if path.is_file() else None


def preload_torch() -> bool:
    """Map torch's native library with the GIL released; True when it was loaded here."""
    if not sys.platform.startswith("linux"):
        return False
    path = torch_library()
    if path is None:
        return False
    try:
        libc = ctypes.CDLL(None)  # the process's own symbols: dlopen from the C library
        dlopen = libc.dlopen
    except (OSError, AttributeError) as error:
        log.debug("cannot preload %s: %s", path, error)
        return False
    dlopen.restype = ctypes.c_void_p
    dlopen.argtypes = [ctypes.c_char_p, ctypes.c_int]
    handle = dlopen(os.fsencode(path), RTLD_NOW)  # a ctypes call: the GIL is released while it runs
    if not handle:
        log.debug("dlopen(%s) failed; torch's import loads it instead", path)
        return False
    _handles.append(handle)
    return True
