"""The live terminal view (when stdout is a terminal): score trace, band powers per channel, quality, source state.

Redrawn 4 times a second from what the Hub carried since the last frame; it never slows the signal path (its
subscription drops the oldest messages if it falls behind). Later stages add lines without touching this module:
Controls / Bar messages show up as a "music" line by themselves; any service can publish
`Event(kind="view", text=..., data={"panel": "policy"})` to keep one line per panel name up to date; code that holds
the view can `view.add_panel(render)` with a function returning any rich renderable.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import sys
from collections import deque
from collections.abc import Callable, Iterator

from neuromusic.daemon.session.context import SessionContext
from neuromusic.models.core.messages import Bar, Controls, Event, Features, Score, SourceStatus
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

REFRESH_S = 0.25
TRACE_WIDTH = 60
SPARKS = "▁▂▃▄▅▆▇█"
MAX_CHANNELS = 16  # rows shown; more channels are summarised in one line
STATE_STYLE = {"scoring": "green", "calibrating": "yellow", "stale": "red", "poor-signal": "red"}
SOURCE_STYLE = {
    "streaming": "green",
    "connecting": "yellow",
    "reconnecting": "yellow",
    "stale": "red",
    "stopped": "dim",
}


class TerminalView:
    name = "view"

    def __init__(self, ctx: SessionContext, console: Console | None = None) -> None:
        self._ctx = ctx
        self.console = console if console is not None else Console()
        self._history_s = ctx.config.session.view_history_s
        self._started = ctx.clock.now()
        self._scores: deque[tuple[float, float | None]] = deque()  # (clock time, value)
        self.score: Score | None = None
        self.features: Features | None = None
        self.source: SourceStatus | None = None
        self.controls: Controls | None = None
        self.bar: Bar | None = None
        self.events: deque[Event] = deque(maxlen=5)
        self._panels: list[Callable[[], RenderableType]] = []
        self.lines: dict[str, str] = {}  # panel name -> its latest line, from Event(kind="view")

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
        elif isinstance(message, SourceStatus):
            self.source = message
        elif isinstance(message, Event) and message.kind == "view":
            self.lines[str(message.data.get("panel", ""))] = message.text
        elif isinstance(message, Event):
            self.events.append(message)
        elif isinstance(message, Controls):
            self.controls = message
        elif isinstance(message, Bar):
            self.bar = message

    # -- rendering ---------------------------------------------------------------------------------------------
    def render(self) -> RenderableType:
        parts: list[RenderableType] = [self._header(), self._trace()]
        if self.features is not None:
            parts.append(self._bands(self.features))
        if self.controls is not None or self.bar is not None:
            parts.append(self._music())
        parts.extend(Text(f"{panel} {text}" if panel else text) for panel, text in self.lines.items())
        parts.extend(render() for render in self._panels)
        if self.events:
            parts.append(Text("\n".join(f"• {e.kind}: {e.text}" for e in self.events), style="dim"))
        return Group(*parts)

    def _header(self) -> Text:
        elapsed = self._ctx.clock.now() - self._started
        source = self.source.state if self.source else "connecting"
        text = Text(f"neuromusic {self._ctx.device_id}  {int(elapsed) // 60:02d}:{int(elapsed) % 60:02d}  source ")
        text.append(source, style=SOURCE_STYLE.get(source, ""))
        if self.source is not None and self.source.detail:
            text.append(f" ({self.source.detail})", style="dim")
        text.append("\nrelaxation ")
        if self.score is None:
            text.append("waiting for data", style="yellow")
            return text
        state = self.score.state
        value = "—" if self.score.value is None else f"{self.score.value:.2f}"
        text.append(f"{value} ", style="bold")
        text.append(state, style=STATE_STYLE.get(state, ""))
        text.append(f"  confidence {self.score.confidence:.2f}")
        if self.features is not None:
            text.append(f"  quality {self.features.quality:.0%}")
        return text

    def _trace(self) -> Text:
        """The score over the last view_history_s seconds, one column per time slot; a gap where there was none."""
        line = [" "] * TRACE_WIDTH
        now = self._ctx.clock.now()
        for t, value in self._scores:
            if value is None:
                continue
            column = int((t - (now - self._history_s)) / self._history_s * (TRACE_WIDTH - 1))
            if 0 <= column < TRACE_WIDTH:
                line[column] = SPARKS[min(len(SPARKS) - 1, int(value * len(SPARKS)))]
        return Text(f"score {self._history_s:g} s │{''.join(line)}│", style="cyan")

    def _bands(self, features: Features) -> RenderableType:
        table = Table(title="band power µV² (from DE) per channel", title_justify="left", box=None, pad_edge=False)
        table.add_column("channel")
        for band in features.band_names:
            table.add_column(band, justify="right")
        table.add_column("signal")
        for c, channel in enumerate(features.channel_names[:MAX_CHANNELS]):
            good = bool(features.good[c])
            cells = [_power(features.de[b, c]) for b in range(len(features.band_names))]
            status = "ok" if good else (features.bad_reasons[c] or "bad")
            table.add_row(channel, *cells, Text(status, style="green" if good else "red"))
        hidden = len(features.channel_names) - MAX_CHANNELS
        if hidden > 0:
            bad = int((~features.good[MAX_CHANNELS:]).sum())
            table.caption = f"... and {hidden} more channels ({bad} bad)"
        if features.gap_s > 0:
            table.caption = (table.caption or "") + f"  time-stamp gap {features.gap_s:.2f} s"
        return table

    def _music(self) -> Text:
        text = Text("music ")
        if self.controls is not None:
            c = self.controls
            text.append(f"tempo {c.tempo:.0f} BPM  valence {c.valence:.2f}  energy {c.energy:.2f}")
        if self.bar is not None:
            text.append(f"\nbar {self.bar.index} ({self.bar.key} {self.bar.meter}): {self.bar.abc}", style="dim")
        return text


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


def _power(de: float) -> str:
    # DE = ½·ln(2πe·σ²)  =>  σ² = exp(2·DE) / (2πe): the band's variance, i.e. its power in µV².
    if not math.isfinite(de):
        return "—"
    return f"{math.exp(2.0 * de) / (2.0 * math.pi * math.e):.3g}"


def create(ctx: SessionContext) -> TerminalView | None:
    output = ctx.config.session.output
    if output == "view" or (output == "auto" and sys.stdout.isatty()):
        return TerminalView(ctx)
    return None
