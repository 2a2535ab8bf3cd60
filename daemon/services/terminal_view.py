"""The live terminal view (when stdout is a terminal): score trace, band powers per channel, quality, source state,
calibration countdown, policy and pause state, the bar and chords playing, the session folder and recent events.

It is laid out for the terminal it runs in, down to 80×24: the fixed lines (header, score, policy, trace, music,
folder) always show; the band table gets the rows left over, and when its channels do not fit it collapses to one
summary row (the median over good channels) plus a line naming the bad channels. Numbers have one format everywhere:
three significant digits, thousands grouped, never an exponent.

Redrawn 4 times a second from what the Hub carried since the last frame; it never slows the signal path (its
subscription drops the oldest messages if it falls behind). Later stages add lines without touching this module:
any service can publish `Event(kind="view", text=..., data={"panel": "policy"})` to keep one line per panel name up
to date; code that holds the view can `view.add_panel(render)` with a function returning any rich renderable.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import sys
from collections import deque
from collections.abc import Callable, Iterator

import numpy as np
from neuromusic.daemon.session.context import SessionContext
from neuromusic.models.core.controls import CONTROLS
from neuromusic.models.core.messages import Bar, Controls, Event, Features, Score, SourceStatus
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

REFRESH_S = 0.25
SPARKS = "▁▂▃▄▅▆▇█"
MAX_EVENTS = 3  # newest events shown under the view
STATE_STYLE = {"scoring": "green", "calibrating": "yellow", "stale": "red", "poor-signal": "red"}
SOURCE_STYLE = {
    "streaming": "green",
    "connecting": "yellow",
    "reconnecting": "yellow",
    "stale": "red",
    "stopped": "dim",
}
QUIET_EVENTS = ("view",)  # kinds that update a panel line instead of the event list


def number(value: float) -> str:
    """Three significant digits, thousands grouped, never an exponent: 0.433, 12.3, 123, 10,100."""
    if not math.isfinite(value):
        return "—"
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    decimals = 3 if magnitude == 0 else min(3, max(0, 2 - math.floor(math.log10(magnitude))))
    return f"{value:.{decimals}f}"


def band_power(de: float) -> float:
    # DE = ½·ln(2πe·σ²)  =>  σ² = exp(2·DE) / (2πe): the band's variance, i.e. its power in µV².
    return math.exp(2.0 * de) / (2.0 * math.pi * math.e) if math.isfinite(de) else math.nan


class TerminalView:
    name = "view"

    def __init__(self, ctx: SessionContext, console: Console | None = None) -> None:
        self._ctx = ctx
        self.console = console if console is not None else Console()
        self._history_s = ctx.config.session.view_history_s
        self._baseline_s = ctx.config.score.baseline_s
        self._started = ctx.clock.now()
        self._scores: deque[tuple[float, float | None]] = deque()  # (clock time, value)
        self.score: Score | None = None
        self.features: Features | None = None
        self.source: SourceStatus | None = None
        self.controls: Controls | None = None
        self.bar: Bar | None = None
        self.events: deque[Event] = deque(maxlen=MAX_EVENTS)
        self._panels: list[Callable[[], RenderableType]] = []
        self.lines: dict[str, str] = {}  # panel name -> its latest line, from Event(kind="view")
        self._calibration_start: float | None = None  # source time of the first window while calibrating

    def add_panel(self, render: Callable[[], RenderableType]) -> None:
        """The hook for later stages: `render()` is called every frame, below the built-in sections."""
        self._panels.append(render)

    async def run(self) -> None:
        subscription = self._ctx.hub.subscribe(Score, Features, SourceStatus, Event, Controls, Bar, maxsize=1024)
        try:
            live = Live(self.render(), console=self.console, refresh_per_second=1 / REFRESH_S, transient=False)
            with live, _logs_above_the_view():
                while True:
                    await asyncio.sleep(REFRESH_S)
                    while not subscription.queue.empty():
                        self.take(subscription.get_nowait())
                    live.update(self.render())
        finally:
            subscription.close()

    def take(self, message: object) -> None:
        now = self._ctx.clock.now()
        if isinstance(message, Score):
            self.score = message
            self._scores.append((now, message.value))
            while self._scores and self._scores[0][0] < now - self._history_s:
                self._scores.popleft()
        elif isinstance(message, Features):
            self.features = message
            if self.score is None or self.score.state == "calibrating":
                if self._calibration_start is None:
                    self._calibration_start = message.source_time
            else:
                self._calibration_start = None
        elif isinstance(message, SourceStatus):
            self.source = message
        elif isinstance(message, Event) and message.kind in QUIET_EVENTS:
            self.lines[str(message.data.get("panel", ""))] = message.text
        elif isinstance(message, Event):
            self.events.append(message)
        elif isinstance(message, Controls):
            self.controls = message
        elif isinstance(message, Bar):
            self.bar = message

    # -- rendering ---------------------------------------------------------------------------------------------
    def render(self) -> RenderableType:
        width = max(40, self.console.size.width)
        height = max(12, self.console.size.height)
        top: list[RenderableType] = [self._header(width), self._state_line(), self._trace(width)]
        bottom: list[RenderableType] = []
        if self.controls is not None or self.bar is not None:
            bottom.extend(self._music(width))
        bottom.extend(_clip(f"{panel} {text}" if panel else text, width) for panel, text in self.lines.items())
        bottom.extend(render() for render in self._panels)
        folder = self._ctx.session_dir
        bottom.append(_folder_line(folder, width))
        events = [_clip(f"• {e.kind}: {e.text}", width, "dim") for e in self.events]
        # Rows: header, relaxation and trace, then the lines below the table (a panel counted as one); one more for
        # the cursor line rich keeps under a live view. The table gets what is left but the newest event.
        room = height - 1 - (3 + len(bottom))
        parts = top
        if self.features is not None:
            table, used = self._bands(self.features, room - min(1, len(events)))
            parts.append(table)
            room -= used
        parts.extend(bottom)
        parts.extend(events[len(events) - room :] if room > 0 else [])
        return Group(*parts)

    def _header(self, width: int) -> Text:
        elapsed = self._ctx.clock.now() - self._started
        source = self.source.state if self.source else "connecting"
        control = self._ctx.control
        text = Text(f"neuromusic {self._ctx.device_id}  {int(elapsed) // 60:02d}:{int(elapsed) % 60:02d}  ")
        text.append(source, style=SOURCE_STYLE.get(source, ""))
        text.append(f"  policy {control.policy_name} ")
        text.append("paused" if control.paused else "playing", style="bold yellow" if control.paused else "green")
        if self.source is not None and self.source.detail:
            text.append(f"  {self.source.detail}", style="dim")
        text.truncate(width, overflow="ellipsis")
        return text

    def _state_line(self) -> Text:
        text = Text("relaxation ")
        if self.score is None:
            text.append("waiting for data", style="yellow")
            return text
        state = self.score.state
        value = "—" if self.score.value is None else f"{self.score.value:.2f}"
        text.append(f"{value} ", style="bold")
        text.append(state, style=STATE_STYLE.get(state, ""))
        left = self.calibration_left()
        if left is not None:
            text.append(f" {left:.0f} s left", style="yellow")
        text.append(f"  confidence {self.score.confidence:.2f}")
        if self.features is not None:
            text.append(f"  quality {self.features.quality:.0%}")
        return text

    def calibration_left(self) -> float | None:
        """Seconds of baseline still to record while calibrating (None otherwise)."""
        if self.score is None or self.score.state != "calibrating":
            return None
        if self._calibration_start is None or self.features is None:
            return self._baseline_s
        return max(0.0, self._baseline_s - (self.features.source_time - self._calibration_start))

    def _trace(self, width: int) -> Text:
        """The score over the last view_history_s seconds, one column per time slot; a gap where there was none."""
        label = f"score {self._history_s:g} s "
        columns = max(10, width - len(label) - 2)
        line = [" "] * columns
        now = self._ctx.clock.now()
        for t, value in self._scores:
            if value is None:
                continue
            column = int((t - (now - self._history_s)) / self._history_s * (columns - 1))
            if 0 <= column < columns:
                line[column] = SPARKS[min(len(SPARKS) - 1, int(value * len(SPARKS)))]
        return Text(f"{label}│{''.join(line)}│", style="cyan")

    def _bands(self, features: Features, room: int) -> tuple[RenderableType, int]:
        """The band table in at most `room` rows: one row per channel when they fit, else a summary row."""
        table = Table(box=None, pad_edge=False)
        table.add_column("µV² (DE)")  # band power from the differential entropy
        for band in features.band_names:
            table.add_column(band, justify="right")
        table.add_column("signal")
        n = len(features.channel_names)
        caption = f"largest time-stamp gap {number(features.gap_s)} s" if features.gap_s > 0 else ""
        if n + 1 + (1 if caption else 0) <= room:
            for c, channel in enumerate(features.channel_names):
                cells = [number(band_power(features.de[b, c])) for b in range(len(features.band_names))]
                status, style = _channel_status(features, c)
                table.add_row(channel, *cells, Text(status, style=style))
            table.caption = caption or None
            return table, n + 1 + (1 if caption else 0)
        good = features.good.astype(bool)
        with np.errstate(all="ignore"):
            medians = [
                float(np.median(features.de[b, good])) if good.any() else math.nan
                for b in range(len(features.band_names))
            ]
        cells = [number(band_power(de)) for de in medians]
        table.add_row(f"median of {int(good.sum())}/{n}", *cells, Text("summary", style="dim"))
        bad = [
            f"{name} {reason or 'bad'}"
            for name, reason, ok in zip(features.channel_names, features.bad_reasons, good, strict=True)
            if not ok
        ]
        repaired = [f"{name} {k}" for name, k in zip(features.channel_names, features.repaired, strict=False) if k]
        table.caption = (
            ("bad: " + ", ".join(bad) if bad else f"all {n} channels ok")
            + (f"; spike samples repaired: {', '.join(repaired)}" if repaired else "")
            + (f"; {caption}" if caption else "")
        )
        table.caption_justify = "left"
        return table, 3

    def _music(self, width: int) -> list[Text]:
        text = Text("music")
        if self.controls is not None:
            shown = (f"{spec.label} {spec.show(v)}" for spec, v in zip(CONTROLS, self.controls.values(), strict=True))
            text.append(" " + "  ".join(shown))
        if self.bar is not None:
            bar = self.bar
            chords = " ".join(bar.chords) if bar.chords else "—"
            text.append(f"  bar {bar.index} {bar.key} {bar.meter}  ")
            text.append(chords, style="bold")
        text.truncate(width, overflow="ellipsis")
        return [text]


def _channel_status(features: Features, c: int) -> tuple[str, str]:
    """A channel's signal cell: why it is bad, else how many spike samples were repaired in the window, else ok."""
    if not features.good[c]:
        return features.bad_reasons[c] or "bad", "red"
    repaired = features.repaired[c] if c < len(features.repaired) else 0
    return (f"{repaired} repaired", "yellow") if repaired else ("ok", "green")


def _folder_line(folder: object, width: int) -> Text:
    """The session folder; a long path loses its start, never the folder's own name."""
    if folder is None:
        return Text("session not recorded", style="dim")
    path = str(folder)
    room = width - len("session ")
    if len(path) > room:
        path = "…" + path[len(path) - room + 1 :]
    return Text(f"session {path}", style="dim")


def _clip(text: str, width: int, style: str = "") -> Text:
    line = Text(text.replace("\n", " "), style=style)
    line.truncate(width, overflow="ellipsis")
    return line


@contextlib.contextmanager
def _logs_above_the_view() -> Iterator[None]:
    """Live swaps sys.stderr for a proxy that prints above the view; logging handlers hold the original stream and
    would scribble over the view, so point them at the proxy while it is shown."""
    handlers = [
        h for h in logging.getLogger().handlers if type(h) is logging.StreamHandler and h.stream is sys.__stderr__
    ]
    for handler in handlers:
        handler.setStream(sys.stderr)
    try:
        yield
    finally:
        for handler in handlers:
            handler.setStream(sys.__stderr__)


def create(ctx: SessionContext) -> TerminalView | None:
    output = ctx.config.session.output
    if output == "view" or (output == "auto" and sys.stdout.isatty()):
        return TerminalView(ctx)
    return None
