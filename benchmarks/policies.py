"""Policies on listeners they never met (a population), across sessions, on the shipped listeners, and the speed of
the simulated closed loop.

    .venv/bin/python benchmarks/policies.py [--population 50] [--population-seed 0] [--seeds 6] [--minutes 20]
                                            [--sessions 3] [--session-minutes 20] [--session-seeds 2]
                                            [--shipped-seeds 2] [--listeners default,...] [--shipped-loop eeg|direct]
                                            [--parts population,sessions,shipped,speed] [--config FILE]

Part 1, population (direct loop, drivers/listener_population.py, population `--population-seed`): per listener the best
fixed controls (grid search on the same seeds) and, per policy, medians over the seeds of the minutes until the 60-s
mean hidden relaxation reached 90 % of the best fixed controls' mean ("reach") and of the session's mean relaxation over
the best fixed controls' mean ("mean/best"). Reported: the fraction of listeners served (median reach within 10
minutes), the fraction of all sessions that reached within 10 minutes, the median reach, the median mean/best and the
fraction of listeners with mean/best >= 0.9. Targets: bandit served >= 80 %, median mean/best >= 0.9. Six seeds by
default: whether one session reaches in time depends on its draws, and with two seeds per listener the served
fraction moves by ten points from one pair of seeds to the next.

Part 2, sessions (direct loop): the bandit's sessions in a row per listener and seed, each starting from the previous
one's state (what `--profile` does) and as long as a first session in part 1 (`--session-minutes`, 20), on
`--session-seeds` seeds (2); per session, the median mean/best and the fraction of listeners >= 0.95 and >= 0.9 of
their best. Target: by the third session >= 95 % of best for >= 80 % of listeners. `--session-minutes 10` shows how
shorter sessions fare.

Part 3, shipped listeners (the full loop: simulated EEG, sketch composer): as part 1 per listener, and the bandit's
mean minus the mapping's on the default listener (target: within 0.03). `--listeners` picks some of them by name;
`--shipped-loop direct` runs them on the direct loop instead (no EEG, no composer), to tell the policy's part in a
gap from the full loop's.

Part 4: wall time of one 20-minute full-loop session (sketch composer, bandit) and the speed-up over real time.
Target: < 15 s.

`--config FILE` reads a neuromusic TOML file (the same format as `neuromusic --config`) and benchmarks with its
settings, e.g. `[policy.bandit] model = "bumps"` to measure another choice model; without it, the shipped defaults.

Smaller --population / --seeds / --minutes for quick iterations; the figures in docs/policies.md use the defaults.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from neuromusic.daemon.config import Config, load_config
from neuromusic.daemon.session.simulation import (
    REACH_FRACTION,
    Listener,
    best_fixed,
    load_listener,
    make_composer,
    population_listeners,
    run_session,
    seeded_policy,
    shipped_listeners,
)
from neuromusic.models.core.errors import ConfigError

SERVED_MINUTES = 10.0  # a listener is served when the bandit reaches within this many minutes


def positive(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def one_listener(
    config: Config, listener: Listener, policies: list[str], seeds: list[int], minutes: float, loop: str
) -> dict[str, tuple[float, float, float, float]]:
    """Per policy: (median reach in minutes, median mean/best, median wall s, fraction of the seeds that reached
    within 10 minutes) over the seeds."""
    best = best_fixed(listener.response, config.policy.bounds, minutes, seeds)
    out = {}
    for policy in policies:
        reach, ratio, wall = [], [], []
        for seed in seeds:
            composer = None if loop == "direct" else make_composer("sketch", config, seed)[0]
            trace = run_session(config, listener, policy, minutes, seed, composer, loop=loop)  # type: ignore[arg-type]
            reach.append(trace.time_to_reach(REACH_FRACTION * best.mean_relaxation))
            ratio.append(trace.mean_relaxation / best.mean_relaxation)
            wall.append(trace.wall_s)
        served = float(np.mean(np.array(reach) <= SERVED_MINUTES))
        out[policy] = (float(np.median(reach)), float(np.median(ratio)), float(np.median(wall)), served)
    return out


def population_part(config: Config, args: argparse.Namespace) -> None:
    policies = args.policies.split(",")
    seeds = list(range(args.seeds))
    rows: dict[str, list[tuple[float, float, float, float]]] = {p: [] for p in policies}
    started = time.perf_counter()
    for k, listener in enumerate(population_listeners(args.population, args.population_seed, config.policy.bounds)):
        for policy, row in one_listener(config, listener, policies, seeds, args.minutes, "direct").items():
            rows[policy].append(row)
        progress(f"population {k + 1}/{args.population} ({time.perf_counter() - started:.0f} s)")
    print(
        f"\n## Population: {args.population} listeners x {args.seeds} seeds, {args.minutes:g} simulated min, "
        f"direct loop ({time.perf_counter() - started:.0f} s)\n"
    )
    print(
        "| policy | served (reach <= 10 min) | sessions served | reach median | mean/best median | mean/best >= 0.9 "
        "| s/session |"
    )
    print("|---|---|---|---|---|---|---|")
    for policy in policies:
        a = np.array(rows[policy])
        med = float(np.median(a[:, 0]))
        print(
            f"| {policy} | {np.mean(a[:, 0] <= SERVED_MINUTES):.0%} | {np.mean(a[:, 3]):.0%} | "
            f"{'never' if math.isinf(med) else f'{med:.1f} min'} | {np.median(a[:, 1]):.3f} | "
            f"{np.mean(a[:, 1] >= 0.9):.0%} | {np.mean(a[:, 2]):.2f} |"
        )


def sessions_part(config: Config, args: argparse.Namespace) -> None:
    seeds = list(range(args.session_seeds))
    ratios = np.zeros((args.population, args.sessions))
    started = time.perf_counter()
    for k, listener in enumerate(population_listeners(args.population, args.population_seed, config.policy.bounds)):
        per_seed = np.zeros((len(seeds), args.sessions))
        for i, seed in enumerate(seeds):
            state: dict[str, Any] | None = None
            for j in range(args.sessions):
                session_seed = seed + 1000 * j
                best = best_fixed(listener.response, config.policy.bounds, args.session_minutes, [session_seed])
                policy = seeded_policy(config, "bandit", session_seed)
                if state is not None:
                    policy.load_state_dict(state)
                trace = run_session(
                    config, listener, "bandit", args.session_minutes, session_seed, None, policy=policy, loop="direct"
                )
                state = trace.policy_state
                per_seed[i, j] = trace.mean_relaxation / best.mean_relaxation
        ratios[k] = np.median(per_seed, axis=0)
        progress(f"sessions {k + 1}/{args.population} ({time.perf_counter() - started:.0f} s)")
    print(
        f"\n## Sessions in a row (bandit, state carried): {args.population} listeners x {args.session_seeds} seeds, "
        f"{args.session_minutes:g} simulated min each, direct loop ({time.perf_counter() - started:.0f} s)\n"
    )
    print("| session | mean/best median | listeners >= 0.95 | listeners >= 0.9 |")
    print("|---|---|---|---|")
    for j in range(args.sessions):
        r = ratios[:, j]
        print(f"| {j + 1} | {np.median(r):.3f} | {np.mean(r >= 0.95):.0%} | {np.mean(r >= 0.9):.0%} |")


def shipped_part(config: Config, args: argparse.Namespace) -> None:
    policies = args.policies.split(",")
    seeds = list(range(args.shipped_seeds))
    started = time.perf_counter()
    lines, means = [], {}
    listeners = [load_listener(path) for path in shipped_listeners()]
    if args.listeners:
        wanted = args.listeners.split(",")
        unknown = sorted(set(wanted) - {listener.name for listener in listeners})
        if unknown:
            names = ", ".join(listener.name for listener in listeners)
            raise SystemExit(f"unknown shipped listener(s) {', '.join(unknown)}; choose from {names}")
        listeners = [listener for listener in listeners if listener.name in wanted]
    for listener in listeners:
        best = best_fixed(listener.response, config.policy.bounds, args.minutes, seeds)
        c = best.controls
        per_policy = one_listener(config, listener, policies, seeds, args.minutes, args.shipped_loop)
        for policy, (reach, ratio, _, _) in per_policy.items():
            means[(listener.name, policy)] = ratio * best.mean_relaxation
            lines.append(
                f"| {listener.name} | {c.tempo:.0f}, {c.valence:.1f}, {c.energy:.1f} | {best.mean_relaxation:.3f} | "
                f"{policy} | {'never' if math.isinf(reach) else f'{reach:.1f} min'} | "
                f"{ratio * best.mean_relaxation:.3f} | {ratio:.2f} |"
            )
        progress(f"shipped {listener.name} ({time.perf_counter() - started:.0f} s)")
    print(
        f"\n## Shipped listeners: {args.shipped_seeds} seeds x {args.minutes:g} simulated min, "
        f"{'full loop, sketch composer' if args.shipped_loop == 'eeg' else 'direct loop'} "
        f"({time.perf_counter() - started:.0f} s)\n"
    )
    print("| listener | best fixed (BPM, val, en) | best mean | policy | reach median | mean r | mean / best |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(lines))
    if ("default", "bandit") in means and ("default", "mapping") in means:
        diff = means[("default", "bandit")] - means[("default", "mapping")]
        print(f"\ndefault listener: bandit mean - mapping mean = {diff:+.3f}")


def speed_part(config: Config, args: argparse.Namespace) -> None:
    composer, name = make_composer("sketch", config, 0)
    cpu = time.process_time()
    trace = run_session(config, load_listener(shipped_listeners()[0]), "bandit", 20.0, 0, composer, name)
    cpu = time.process_time() - cpu
    print("\n## Speed of the full loop (one 20-minute session, default listener, bandit, sketch composer)\n")
    print("| composer | simulated min | wall s | CPU s | speed-up (wall) |")
    print("|---|---|---|---|---|")
    print(f"| {name} | 20 | {trace.wall_s:.1f} | {cpu:.1f} | {20 * 60 / trace.wall_s:.0f}x |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--population", type=int, default=50)
    parser.add_argument("--population-seed", type=int, default=0, help="which population to draw the listeners from")
    parser.add_argument("--seeds", type=positive, default=6, help="seeds per listener in the population part")
    parser.add_argument("--minutes", type=float, default=20.0)
    parser.add_argument("--sessions", type=int, default=3)
    parser.add_argument("--session-minutes", type=float, default=20.0)
    parser.add_argument("--session-seeds", type=positive, default=2, help="seeds per listener in the sessions part")
    parser.add_argument("--shipped-seeds", type=positive, default=2)
    parser.add_argument("--policies", default="mapping,bandit")
    parser.add_argument("--listeners", help="shipped listeners to run, by name (comma-separated; default: all)")
    parser.add_argument("--shipped-loop", choices=("eeg", "direct"), default="eeg", help="the shipped part's loop")
    parser.add_argument("--parts", default="population,sessions,shipped,speed")
    parser.add_argument("--config", type=Path, help="a neuromusic TOML file whose settings to benchmark with")
    args = parser.parse_args()
    try:
        config = load_config(args.config) if args.config else Config()
    except ConfigError as error:
        parser.error(str(error))
    parts = {"population": population_part, "sessions": sessions_part, "shipped": shipped_part, "speed": speed_part}
    for part in args.parts.split(","):
        if part not in parts:
            parser.error(f"unknown part {part!r}; choose from {', '.join(parts)}")
        parts[part](config, args)


if __name__ == "__main__":
    main()
