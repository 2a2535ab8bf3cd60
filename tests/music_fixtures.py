"""A tiny ABC corpus and a tiny model trained on it in seconds, for the composer's tests."""

from __future__ import annotations

from pathlib import Path

# Eight short tunes: major and minor, 4/4, 3/4 and 6/8, long and short notes, so every control level occurs.
TUNES = """\
X:1
T:Major quarters
M:4/4
L:1/8
K:D
D2F2A2d2|c2B2A2F2|G2B2A2F2|E2D2E2F2|D2F2A2d2|c2B2A2F2|G2E2F2E2|D8|

X:2
T:Major eighths
M:4/4
L:1/8
Q:1/4=140
K:G
GABc dBGB|cdef gfed|cBAG FGAB|cAFA G4|GABc dBGB|cdef gfed|cBAG FGAB|G8|

X:3
T:Minor slow
M:3/4
L:1/8
Q:1/4=60
K:Am
A4 c2|B4 A2|G4 E2|A6|c4 e2|d4 c2|B4 ^G2|A6|

X:4
T:Minor jig
M:6/8
L:1/8
K:Em
EFG B2A|GFE F2D|EFG B2c|BAG F3|EFG B2A|GFE F2D|EGB e2d|BGF E3|

X:5
T:Major waltz
M:3/4
L:1/8
K:F
F2 A2 c2|f4 e2|d2 c2 B2|A4 G2|F2 A2 c2|f4 e2|d2 B2 G2|F6|

X:6
T:Minor reel
M:4/4
L:1/8
K:Dm
DEFG A2 d2|cAGE FDD2|DEFG A2 d2|cAGE D4|FGAB c2 f2|edcA GEE2|DEFG A2 d2|cAGE D4|

X:7
T:Major jig
M:6/8
L:1/8
K:A
A2A cBA|B2B dcB|c2c edc|B3 E3|A2A cBA|B2B dcB|cec BGB|A3 A3|

X:8
T:Minor hymn
M:4/4
L:1/4
K:Gm
G B d c|B A G2|B d g f|d c B2|G B d c|B A G2|F A c B|G4|
"""

# Small enough to train in about two seconds on one thread, big enough to learn bar lines.
TINY_TRAIN = ["--layers", "1", "--width", "32", "--heads", "2", "--context", "64", "--batch-size", "4"]


def write_tunes(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tunes.abc").write_text(TUNES)
    return folder
