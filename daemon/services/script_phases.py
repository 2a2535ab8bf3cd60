"""The simulated listener's script as the session's ground truth: `--board simulated --script calm:60,stress:60`
publishes Event(kind="phase", text="calm", data={"source": "script", ...}) when each segment starts, so the recording,
the report's phase table, the exports and the LSL markers stream all know which state the listener was really in.

The script starts with the first simulated sample (drivers/simulated.py: ScriptedState starts at the first time it is
asked, the first sample's time stamp, which is on the session clock) and loops, so its phases do too.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from neuromusic.daemon.session.context import SessionContext
from neuromusic.models.core.messages import Chunk, Event


@dataclass(frozen=True)
class ScriptSegment:
    name: str  # as written in the script: "calm", "stress", or a level such as "0.3"
    level: float  # relaxation in 0..1
    seconds: float


def script_segments(script: str) -> list[ScriptSegment]:
    """The segments of a script, named as the user wrote them (levels from the simulator's own parser)."""
    from neuromusic.drivers.simulated import parse_script

    parsed = parse_script(script)  # raises with a clear message on a bad script
    names = [part.split(":")[0].strip() for part in script.split(",") if part.strip()]
    return [ScriptSegment(name, s.level, s.seconds) for name, s in zip(names, parsed, strict=True)]


class ScriptPhases:
    name = "script_phases"

    def __init__(self, ctx: SessionContext, segments: list[ScriptSegment]) -> None:
        self._ctx = ctx
        self.segments = segments

    async def run(self) -> None:
        subscription = self._ctx.hub.subscribe(Chunk, maxsize=4)
        try:
            first: Chunk = await subscription.get()
        finally:
            subscription.close()
        start = float(first.timestamps[0]) if first.n_samples else self._ctx.clock.now()
        clock = self._ctx.clock
        loop_number = 0
        while True:
            for number, segment in enumerate(self.segments):
                await clock.sleep_until(start)
                data = {"source": "script", "level": segment.level, "segment": number, "loop": loop_number}
                self._ctx.hub.publish(Event(t=start, kind="phase", text=segment.name, data=data))
                start += segment.seconds
            loop_number += 1
            await asyncio.sleep(0)


def create(ctx: SessionContext) -> ScriptPhases | None:
    source = ctx.config.source
    if source.board.strip().lower() != "simulated":
        return None
    return ScriptPhases(ctx, script_segments(source.script))
