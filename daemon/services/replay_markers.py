"""Markers of a replayed file (`--board replay --file x.xdf`: its text streams; EDF/FIF: its annotations) become
markers of the new session, each published when the replay reaches it, so the recording, the report and the exports
keep them. A marker's session time is placed by the replayed EEG: the time of the chunk that passed it, less how far
it lies before that chunk's last sample (scaled by the replay speed).
"""

from __future__ import annotations

from neuromusic.daemon.session.context import SessionContext
from neuromusic.models.core.messages import Chunk, Event


class ReplayMarkers:
    name = "replay_markers"

    def __init__(self, ctx: SessionContext, markers: list[tuple[float, str]], speed: float) -> None:
        self._ctx = ctx
        self.markers = markers
        self.speed = speed
        self.published = 0

    async def run(self) -> None:
        subscription = self._ctx.hub.subscribe(Chunk, maxsize=4096)
        try:
            async for chunk in subscription:
                if chunk.n_samples:
                    self.take(chunk, self._ctx.clock.now())
                if self.published == len(self.markers):
                    return
        finally:
            subscription.close()

    def take(self, chunk: Chunk, now: float) -> None:
        last = float(chunk.timestamps[-1])
        while self.published < len(self.markers) and self.markers[self.published][0] <= last:
            stamp, label = self.markers[self.published]
            behind = (last - stamp) / self.speed if self.speed > 0 else 0.0
            data = {"source": "replay", "file_t": stamp}
            self._ctx.hub.publish(Event(t=now - behind, kind="marker", text=label, data=data))
            self.published += 1


def create(ctx: SessionContext) -> ReplayMarkers | None:
    source = ctx.config.source
    if source.board.strip().lower() != "replay" or source.file is None:
        return None
    from neuromusic.drivers.replay_source import load_markers

    markers = load_markers(source.file, source.stream)
    return ReplayMarkers(ctx, markers, source.replay_speed) if markers else None
