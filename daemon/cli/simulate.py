"""`neuromusic simulate`: the closed loop on simulated listeners, faster than real time, policies side by side.

For every listener (default: every shipped profile) it first finds the best fixed controls by a grid search on the
same seeds, then runs each policy's sessions and prints, per policy: the time until the listener's relaxation (its
60-second mean) first reached 90 % of what the best fixed controls give, the mean relaxation over the session, the
regret against the best fixed controls (their mean minus the policy's), and control changes per minute.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # annotations only: the command imports nothing heavy at module level
    from neuromusic.daemon.config import Config
    from neuromusic.daemon.session.simulation import FixedBest, Listener, SessionTrace
    from rich.table import Table

EPILOG = """\
examples:
  neuromusic simulate --policy bandit --minutes 20                      every shipped listener, one seed
  neuromusic simulate --listener upbeat --compare mapping,target,bandit --seeds 10 --plot upbeat.png
  neuromusic simulate --listener my-listener.toml --policy mapping --composer model
  neuromusic simulate --population 50 --seed 0 --compare mapping,bandit --loop direct   listeners never met
  neuromusic simulate --listener default --script calm:180,stress:120 --compare mapping,target --minutes 10

A listener is a shipped profile name (default, upbeat, melancholic, slow-responder) or a TOML file with a
[response] section, or drawn from the population of listeners (--population; see docs/policies.md).
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    parser.add_argument(
        "--config",
        type=Path,
        help="TOML configuration ([policy], [features], [score], [composer], [arranger], [sinks] lead_bars and "
        "start_delay_s apply)",
    )
    parser.add_argument(
        "--listener", action="append", metavar="PROFILE", help="shipped profile name or TOML file (repeatable)"
    )
    parser.add_argument("--policy", metavar="NAME", help="the policy to simulate [policy.name]")
    parser.add_argument("--compare", metavar="A,B,...", help="several policies side by side on the same seeds")
    parser.add_argument("--minutes", type=float, default=20.0, help="simulated minutes per session (default 20)")
    parser.add_argument("--seeds", type=int, default=1, help="sessions per listener and policy, seeds 0..N-1")
    parser.add_argument("--target", type=float, help="score the target policy steers toward [policy.target]")
    parser.add_argument(
        "--composer",
        choices=("auto", "sketch", "model"),
        default="auto",
        help="model: the GPT-2 composer; sketch: the rule-based one; auto (default): the model if a checkpoint loads",
    )
    parser.add_argument(
        "--sessions",
        type=int,
        default=1,
        help="consecutive sessions per seed, each policy starting from what the previous one learned (as with "
        "--profile); the table shows the last",
    )
    parser.add_argument("--plot", type=Path, metavar="PNG", help="write the hidden state, score and controls of seed 0")
    parser.add_argument(
        "--population", type=int, metavar="N", help="N listeners drawn from the population of listeners (--seed)"
    )
    parser.add_argument("--seed", type=int, default=0, help="which population to draw from (default 0)")
    parser.add_argument(
        "--loop",
        choices=("eeg", "direct"),
        default="eeg",
        help="eeg (default): the full loop through simulated EEG; direct: the score straight from the hidden state "
        "(fast, for many listeners)",
    )
    parser.add_argument(
        "--script",
        metavar="PLAN",
        help="the listener's state follows this plan whatever the music (e.g. calm:180,stress:120, looping): prints "
        "how the music answered each tension",
    )


def run(args: argparse.Namespace) -> int:
    from neuromusic.daemon.config import load_config
    from neuromusic.models.core.errors import ConfigError
    from neuromusic.policies.registry import policy_names
    from rich.console import Console

    config = load_config(args.config, {"policy.target": args.target})
    names = _policies(args, config.policy.name)
    unknown = [n for n in names if n not in policy_names()]
    if unknown:
        raise ConfigError(f"unknown policy {unknown[0]!r}; choose from: {', '.join(policy_names())}")
    if args.sessions < 1:
        raise ConfigError(f"--sessions must be at least 1, got {args.sessions}")
    if args.seeds < 1:
        raise ConfigError(f"--seeds must be at least 1, got {args.seeds}")
    if not (args.minutes > 0 and math.isfinite(args.minutes)):
        raise ConfigError(f"--minutes must be a positive number, got {args.minutes}")
    if args.plot is not None and not args.plot.absolute().parent.is_dir():
        # Checked now, not after minutes of simulation: the plot is written last.
        raise ConfigError(f"--plot {args.plot}: the folder {args.plot.absolute().parent} does not exist")
    listeners = _listeners(args, config)
    console = Console()
    started = time.perf_counter()
    if args.script is not None:
        traces = _scripted(config, listeners, names, args, console)
    elif args.population is not None and len(listeners) > 1:
        traces = _population(config, listeners, names, args, console)
    else:
        traces = _per_listener(config, listeners, names, args, console)
    elapsed = time.perf_counter() - started
    console.print(
        f"{len(listeners) * len(names) * args.seeds} sessions of {args.minutes:g} simulated minutes in {elapsed:.1f} s"
    )
    if args.plot is not None:
        from neuromusic.daemon.lab.simulation_plot import plot_traces

        plot_traces(traces, args.plot)
        console.print(f"plot written to {args.plot}")
    return 0


def _listeners(args: argparse.Namespace, config: Config) -> list[Listener]:
    from neuromusic.daemon.session.simulation import load_listener, population_listeners
    from neuromusic.drivers.simulated import parse_script
    from neuromusic.models.core.errors import ConfigError

    if args.script is not None:
        parse_script(args.script)  # a bad plan is refused before any simulation
    if args.population is None:
        return [load_listener(path) for path in _listener_paths(args.listener)]
    if args.population < 1:
        raise ConfigError(f"--population must be at least 1, got {args.population}")
    given = [load_listener(path) for path in _listener_paths(args.listener)] if args.listener else []
    return given + population_listeners(args.population, args.seed, config.policy.bounds)


def _per_listener(
    config: Config, listeners: list[Listener], names: list[str], args: argparse.Namespace, console: Any
) -> list[tuple[str, FixedBest, SessionTrace]]:
    from neuromusic.daemon.session.simulation import best_fixed

    seeds = list(range(args.seeds))
    traces: list[tuple[str, FixedBest, SessionTrace]] = []
    for listener in listeners:
        best = best_fixed(listener.response, config.policy.bounds, args.minutes, seeds)
        rows = []
        for name in names:
            sessions = [_sessions(config, listener, name, args, seed) for seed in seeds]
            traces.append((listener.name, best, sessions[0]))
            rows.append(PolicyRow.of(name, sessions, best.mean_relaxation))
        console.print(_table(listener.name, best, rows))
    return traces


def _population(
    config: Config, listeners: list[Listener], names: list[str], args: argparse.Namespace, console: Any
) -> list[tuple[str, FixedBest, SessionTrace]]:
    """Medians over the listeners (each the median over its seeds) and the fraction of listeners served."""
    import numpy as np
    from neuromusic.daemon.session.simulation import REACH_FRACTION, best_fixed
    from rich.table import Table

    seeds = list(range(args.seeds))
    reach: dict[str, list[float]] = {n: [] for n in names}
    ratio: dict[str, list[float]] = {n: [] for n in names}
    traces: list[tuple[str, FixedBest, SessionTrace]] = []
    for listener in listeners:
        best = best_fixed(listener.response, config.policy.bounds, args.minutes, seeds)
        for name in names:
            sessions = [_sessions(config, listener, name, args, seed) for seed in seeds]
            if len(traces) < 4 * len(names):
                traces.append((listener.name, best, sessions[0]))
            reach[name].append(
                float(np.median([s.time_to_reach(REACH_FRACTION * best.mean_relaxation) for s in sessions]))
            )
            ratio[name].append(float(np.median([s.mean_relaxation for s in sessions])) / best.mean_relaxation)
    table = Table(
        title=f"{len(listeners)} listeners of population {args.seed}, {args.seeds} seed(s), {args.minutes:g} min",
        caption="served: listeners (median over seeds) reaching 90 % of their best fixed controls within 10 min; "
        "mean/best: mean relaxation over the best fixed controls' mean",
        title_justify="left",
    )
    for header in ("policy", "served", "reach median", "mean/best median", "mean/best >= 0.9", "mean/best >= 0.95"):
        table.add_column(header, justify="left" if header == "policy" else "right")
    for name in names:
        r, q = np.array(reach[name]), np.array(ratio[name])
        median = float(np.median(r))
        table.add_row(
            name,
            f"{np.mean(r <= 10.0):.0%}",
            "never" if math.isinf(median) else f"{median:.1f} min",
            f"{np.median(q):.2f}",
            f"{np.mean(q >= 0.9):.0%}",
            f"{np.mean(q >= 0.95):.0%}",
        )
    console.print(table)
    return traces


def _scripted(
    config: Config, listeners: list[Listener], names: list[str], args: argparse.Namespace, console: Any
) -> list[tuple[str, FixedBest, SessionTrace]]:
    """Sessions whose listener follows args.script; a table of how the music answered each tension."""
    from neuromusic.daemon.session.simulation import FixedBest, make_composer, run_session
    from neuromusic.daemon.session.stress_check import stress_responses
    from neuromusic.models.core.controls import CONTROLS
    from neuromusic.models.core.messages import Controls
    from rich.table import Table

    start = Controls.from_values(spec.start for spec in CONTROLS)  # no best fixed controls: the plot's reference
    table = Table(
        title=f"the music after each tension of {args.script!r}",
        caption="met: bars after the tension until the music moved toward it (tempo +6 BPM, or energy up or valence "
        "down by 0.15); led back: half way back to the music before by the end of the tense segment",
        title_justify="left",
    )
    for header in ("listener", "policy", "seed", "tension at", "met after", "tempo move", "energy/valence", "led back"):
        table.add_column(header)
    traces = []
    for listener in listeners:
        for name in names:
            for seed in range(args.seeds):
                composer, composer_name = (
                    (None, "direct") if args.loop == "direct" else make_composer(args.composer, config, seed)
                )
                trace = run_session(
                    config,
                    listener,
                    name,
                    args.minutes,
                    seed,
                    composer,
                    composer_name,
                    loop=args.loop,
                    script=args.script,
                )
                if seed == 0:
                    traces.append((listener.name, FixedBest(start, math.nan, ()), trace))
                for r in stress_responses(args.script, trace.bar_t, trace.controls, args.minutes * 60.0):
                    met = "never" if r.bars_to_meet is None else f"{r.bars_to_meet} bars"
                    table.add_row(
                        listener.name,
                        name,
                        str(seed),
                        f"{r.onset_s:.0f} s",
                        met,
                        f"{r.tempo_move:+.1f} BPM",
                        f"{r.unit_move:+.2f}",
                        "yes" if r.led_back else "no",
                    )
    console.print(table)
    return traces


def _sessions(
    config: Config, listener: Listener, policy_name: str, args: argparse.Namespace, seed: int
) -> SessionTrace:
    """`args.sessions` sessions in a row for one seed; each new policy loads the previous one's state_dict (what
    `--profile` does between real sessions). Later sessions get fresh listener noise. Returns the last."""
    from neuromusic.daemon.session.simulation import make_composer, run_session, seeded_policy

    trace = None
    state: dict[str, Any] | None = None
    for k in range(args.sessions):
        session_seed = seed + 1000 * k
        composer, composer_name = (
            (None, "direct") if args.loop == "direct" else make_composer(args.composer, config, session_seed)
        )
        policy = seeded_policy(config, policy_name, session_seed)
        if state is not None:
            policy.load_state_dict(state)
        trace = run_session(
            config,
            listener,
            policy_name,
            args.minutes,
            session_seed,
            composer,
            composer_name,
            policy=policy,
            loop=args.loop,
        )
        state = trace.policy_state
    assert trace is not None
    return trace


class PolicyRow:
    """One policy on one listener, medians over the seeds."""

    def __init__(
        self,
        name: str,
        reach_min: float,
        mean: float,
        regret: float,
        changes: float,
        wall_s: float,
        minutes: float,
        composer: str,
    ) -> None:
        self.name, self.reach_min, self.mean, self.regret = name, reach_min, mean, regret
        self.changes, self.wall_s, self.minutes, self.composer = changes, wall_s, minutes, composer

    @classmethod
    def of(cls, name: str, sessions: list[SessionTrace], best_mean: float) -> PolicyRow:
        import numpy as np
        from neuromusic.daemon.session.simulation import REACH_FRACTION

        reach = [s.time_to_reach(REACH_FRACTION * best_mean) for s in sessions]
        means = [s.mean_relaxation for s in sessions]
        return cls(
            name,
            float(np.median(reach)),
            float(np.median(means)),
            float(np.median([best_mean - m for m in means])),
            float(np.median([s.changes_per_minute() for s in sessions])),
            float(np.median([s.wall_s for s in sessions])),
            sessions[0].minutes,
            sessions[0].composer,
        )


def _table(listener: str, best: FixedBest, rows: list[PolicyRow]) -> Table:
    from neuromusic.models.core.controls import CONTROLS
    from rich.table import Table

    fixed = ", ".join(
        f"{spec.label} {spec.show(value)}" for spec, value in zip(CONTROLS, best.controls.values(), strict=True)
    )
    table = Table(
        caption="reach 90%: minutes until the 60-s mean relaxation reached 90 % of the best fixed controls' mean; "
        "mean r: mean hidden relaxation; regret: best fixed mean - mean r; medians over seeds",
        title=f"listener {listener!r}: best fixed controls {fixed} -> mean relaxation {best.mean_relaxation:.3f}",
        title_justify="left",
    )
    for header in (
        "policy",
        "reach 90%",
        "mean r",
        "regret",
        "chg/min",
        "s/sess",
        "speed",
        "composer",
    ):
        table.add_column(header, justify="left" if header in ("policy", "composer") else "right")
    for row in rows:
        reach = "never" if math.isinf(row.reach_min) else f"{row.reach_min:.1f} min"
        speed = row.minutes * 60.0 / row.wall_s if row.wall_s > 0 else math.inf
        table.add_row(
            row.name,
            reach,
            f"{row.mean:.3f}",
            f"{row.regret:+.3f}",
            f"{row.changes:.1f}",
            f"{row.wall_s:.1f}",
            f"{speed:.0f}x",
            row.composer,
        )
    return table


def _policies(args: argparse.Namespace, default: str) -> list[str]:
    if args.compare:
        names = [n.strip() for n in args.compare.split(",") if n.strip()]
        if args.policy and args.policy not in names:
            names.insert(0, args.policy)
        return names
    return [args.policy or default]


def _listener_paths(given: list[str] | None) -> list[Path]:
    from neuromusic.daemon.session.simulation import shipped_listeners
    from neuromusic.models.core.errors import ConfigError

    shipped = {p.stem: p for p in shipped_listeners()}
    if not given:
        return list(shipped.values())
    paths = []
    for item in given:
        if item in shipped:
            paths.append(shipped[item])
        elif Path(item).expanduser().is_file():
            paths.append(Path(item).expanduser())
        else:
            raise ConfigError(
                f"listener {item!r} is neither a shipped profile ({', '.join(shipped)}) nor an existing TOML file"
            )
    return paths
