"""Policies on every shipped listener, and the speed of the simulated closed loop.

    .venv/bin/python benchmarks/policies.py [--seeds 10] [--minutes 20] [--policies mapping,target,bandit]
                                            [--listeners default,upbeat] [--jobs 2] [--composer sketch|model|auto]

(`--listeners` and fewer `--seeds` for quick iterations; the figures in the README use the defaults.)

Part 1, per listener: the best fixed controls (grid search on the same seeds: one setting for all seeds, as
`neuromusic simulate` finds it) and, per policy, medians over the seeds of: the minutes until the 60-s mean hidden
relaxation reached 90 % of the best fixed controls' mean ("reach"), the fraction of seeds that reached it within 10
minutes, the mean relaxation over the session, its ratio to the best fixed controls' mean, and control changes per
minute. Targets (issue 5): bandit reach <= 10 min on every listener
and bandit mean > mapping mean on listeners whose preferences differ from the mapping's (upbeat, melancholic).

Part 2: wall time of one full-loop session (EEG -> features -> score -> policy -> composer -> arranger -> listener)
and the speed-up over real time, for the sketch composer and, where a checkpoint loads, the GPT-2 composer.
Target: a 20-minute session in < 60 s.
"""

from __future__ import annotations

import argparse
import math
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np
from neuromusic.daemon.config import Config
from neuromusic.daemon.session.simulation import (
    REACH_FRACTION,
    best_fixed,
    load_listener,
    make_composer,
    run_session,
    shipped_listeners,
    time_to_reach,
)


def one(args: tuple[str, str, float, int, str]) -> tuple[str, str, int, np.ndarray, float, float, float]:
    path, policy, minutes, seed, composer_choice = args
    config = Config()
    listener = load_listener(path)
    composer, name = make_composer(composer_choice, config, seed)
    trace = run_session(config, listener, policy, minutes, seed, composer, name)
    return listener.name, policy, seed, trace.hidden, trace.mean_relaxation, trace.changes_per_minute(), trace.wall_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--minutes", type=float, default=20.0)
    parser.add_argument("--policies", default="mapping,target,bandit")
    parser.add_argument("--listeners", default="", help="comma-separated shipped listener names (default: all)")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--composer", default="sketch", choices=("sketch", "model", "auto"))
    args = parser.parse_args()
    policies = args.policies.split(",")
    wanted = [name for name in args.listeners.split(",") if name]
    paths = [str(p) for p in shipped_listeners() if not wanted or p.stem in wanted]
    if not paths:
        parser.error(f"no shipped listener among {wanted}")
    seeds = list(range(args.seeds))
    tasks = [(p, pol, args.minutes, s, args.composer) for p in paths for pol in policies for s in seeds]
    started = time.perf_counter()
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs) as pool:
            results = list(pool.map(one, tasks))
    else:
        results = [one(t) for t in tasks]
    elapsed = time.perf_counter() - started

    print(
        f"\n## Policies: {len(tasks)} sessions of {args.minutes:g} simulated min, seeds 0..{args.seeds - 1}, "
        f"{args.composer} composer ({elapsed:.0f} s)\n"
    )
    print(
        "| listener | best fixed (BPM, val, en) | best mean | policy | reach median | reached <= 10 min | "
        "mean r | mean / best | changes/min |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    config = Config()
    for path in paths:
        listener = load_listener(path)
        best = best_fixed(listener.response, config.policy.bounds, args.minutes, seeds)
        c = best.controls
        for policy in policies:
            rows = [r for r in results if r[0] == listener.name and r[1] == policy]
            reach = [time_to_reach(r[3], 1.0, REACH_FRACTION * best.mean_relaxation) for r in rows]
            means = [r[4] for r in rows]
            med = float(np.median(reach))
            within = sum(1 for x in reach if x <= 10.0)
            print(
                f"| {listener.name} | {c.tempo:.0f}, {c.valence:.1f}, {c.energy:.1f} | {best.mean_relaxation:.3f} | "
                f"{policy} | {'never' if math.isinf(med) else f'{med:.1f} min'} | {within}/{len(rows)} | "
                f"{np.median(means):.3f} | {np.median(means) / best.mean_relaxation:.2f} | "
                f"{np.median([r[5] for r in rows]):.1f} |"
            )

    print("\n## Speed of the full loop (one session, seed 0, bandit)\n")
    print("| composer | simulated min | wall s | speed-up |")
    print("|---|---|---|---|")
    for choice in ("sketch", "model"):
        try:
            composer, name = make_composer(choice, config, 0)
        except Exception as error:
            print(f"| {choice} | - | - | not available: {str(error).splitlines()[0][:80]} |")
            continue
        trace = run_session(config, load_listener(paths[0]), "bandit", args.minutes, 0, composer, name)
        print(f"| {name} | {args.minutes:g} | {trace.wall_s:.1f} | {args.minutes * 60 / trace.wall_s:.0f}x |")


if __name__ == "__main__":
    main()
