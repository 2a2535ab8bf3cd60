"""`python -m neuromusic.daemon.cli`: the same as the `neuromusic` command."""

import sys

from neuromusic.daemon.cli import main

sys.exit(main())
