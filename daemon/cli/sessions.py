"""`neuromusic sessions`: list recorded sessions with duration, source and a summary: those under the sessions root
and those recorded elsewhere with `run --session-dir` (noted in the root's index.jsonl)."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict

from neuromusic.daemon.cli.session_args import add_session_argument, sessions_root


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_session_argument(parser, positional=False)
    parser.add_argument("--json", action="store_true", help="one JSON object per session on stdout")
    parser.add_argument("--last", type=int, metavar="N", default=None, help="only the N most recent sessions")


def _fmt_duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}" if minutes >= 60 else f"{minutes}:{secs:02d}"


def run(args: argparse.Namespace) -> int:
    from neuromusic.models.core.errors import DataError
    from neuromusic.models.sessions.index import all_sessions
    from neuromusic.models.sessions.store import SessionReader
    from neuromusic.models.sessions.summary import summarize

    root = sessions_root(args)
    folders = all_sessions(root)  # those under the root and those recorded elsewhere with --session-dir
    if args.last is not None:
        folders = folders[-args.last :]
    if not folders:
        print(f"no sessions under {root}", file=sys.stderr)
        return 0
    rows = []
    for folder in folders:
        try:
            summary = summarize(SessionReader(folder))
        except DataError as error:
            print(f"{folder.name}: unreadable: {error}", file=sys.stderr)
            continue
        if args.json:
            print(json.dumps({"folder": str(folder), **asdict(summary)}))
            continue
        mean = "-" if summary.mean_score is None else f"{summary.mean_score:.2f}"
        relaxed = "-" if summary.relaxed_fraction is None else f"{summary.relaxed_fraction:.0%}"
        rows.append(
            (
                summary.session_id if folder.parent == root else str(folder),  # elsewhere: say where
                summary.started,
                _fmt_duration(summary.duration_s),
                summary.source,
                mean,
                relaxed,
                str(summary.bars),
                str(summary.markers),
                "ok" if summary.clean_exit else "cut short",
            )
        )
    if not args.json:
        header = ("session", "started", "length", "source", "score", "relaxed", "bars", "markers", "end")
        widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
        print(f"sessions in {root}")
        for row in [header, *rows]:
            print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    return 0
