"""The collateral monitor's precision as a lender reads it, on seeds nobody tuned on.

For each seed it simulates a book (``--loans`` loans over ``--days`` days), runs every
detector over it (``monitor_portfolio``, as the demo does) and scores the alerts against the
simulator's ground truth (``score_alerts``; definitions in docs/monitor.md). It prints, per
seed and averaged over the seeds:

- the recall of every detector some story expects (a loan whose story expects the type and
  that the type flagged, over the loans whose story expects it);
- the on-time loans every detector flagged, as a share of the book's on-time loans.

and checks the targets of issue 18 on the averages: recall >= 0.99 for every story, on-time
flags <= 1 % of on-time loans for every detector. The exit status is 1 when one is missed.

The rules were tuned on seeds 21, 22 and 23 (21 is the seed issue 18 reported); the report
seeds (default 31-35) were run only to report. Seed 7 is the demo's default and is not used.

    python bench/precision.py [--seeds 31 32 33 34 35] [--loans 1000] [--days 90] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

from lienwatch.demo.scoring import TypeScore, monitor_portfolio, score_alerts
from lienwatch.sim import SimConfig, generate

REPORT_SEEDS = (31, 32, 33, 34, 35)
TUNING_SEEDS = (21, 22, 23)
MIN_RECALL = 0.99
MAX_ON_TIME_SHARE = 0.01


def score_seed(seed: int, loans: int, days: int) -> tuple[dict[str, TypeScore], float]:
    """Every detector's scores on one simulated book, and the seconds it took."""
    started = time.perf_counter()
    portfolio = generate(SimConfig(loans=loans, days=days, seed=seed))
    scores = score_alerts(portfolio, monitor_portfolio(portfolio).alerts)
    return scores, time.perf_counter() - started


def table(runs: dict[int, dict[str, TypeScore]]) -> tuple[list[str], list[str]]:
    """The printed table, and the targets missed on the averages."""
    seeds = list(runs)
    types = list(next(iter(runs.values())))
    head = f"{'':<18}" + "".join(f"{f'seed {s}':>12}" for s in seeds) + f"{'mean':>12}"
    lines = ["recall per story (loans flagged / loans whose story expects the type)", head]
    missed = []
    for name in types:
        recalls = [runs[s][name].recall for s in seeds]
        if any(r is None for r in recalls):
            continue  # no story expects the type (or not on every seed)
        mean = statistics.fmean(recalls)
        lines.append(_row(name, recalls, mean, "{:.3f}"))
        if mean < MIN_RECALL:
            missed.append(f"{name}: recall {mean:.3f} < {MIN_RECALL}")
    lines += ["", "on-time loans flagged, share of the book's on-time loans (count)", head]
    for name in types:
        shares = [runs[s][name].on_time_share or 0.0 for s in seeds]
        counts = [runs[s][name].on_time_flagged for s in seeds]
        mean = statistics.fmean(shares)
        pairs = zip(shares, counts, strict=True)
        cells = "".join(f"{f'{100 * v:.2f}% ({n})':>12}" for v, n in pairs)
        lines.append(f"{name:<18}{cells}{f'{100 * mean:.2f}%':>12}")
        if mean > MAX_ON_TIME_SHARE:
            missed.append(f"{name}: on-time flags {100 * mean:.2f} % > {100 * MAX_ON_TIME_SHARE} %")
    return lines, missed


def _row(name: str, values: list[float], mean: float, fmt: str) -> str:
    cells = "".join(f"{fmt.format(v):>12}" for v in values)
    return f"{name:<18}{cells}{fmt.format(mean):>12}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=list(REPORT_SEEDS))
    parser.add_argument("--loans", type=int, default=1000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--json", action="store_true", help="the scores as JSON instead")
    args = parser.parse_args()
    tuned = sorted(set(args.seeds) & set(TUNING_SEEDS))
    print(
        f"seeds {args.seeds} ({'TUNED ON ' + str(tuned) if tuned else 'none tuned on'}), "
        f"{args.loans} loans, {args.days} days; {platform.machine()} {os.cpu_count()} cores, "
        f"load {' '.join(f'{x:.1f}' for x in os.getloadavg())}",
        file=sys.stderr,
    )
    runs = {}
    for seed in args.seeds:  # one at a time: the machine is shared
        runs[seed], seconds = score_seed(seed, args.loans, args.days)
        print(f"seed {seed}: {seconds:.0f} s", file=sys.stderr)
    if args.json:
        print(json.dumps({s: {n: sc.as_dict() for n, sc in r.items()} for s, r in runs.items()}))
        return
    lines, missed = table(runs)
    print("\n".join(lines))
    print()
    print("targets met" if not missed else "targets missed:\n  " + "\n  ".join(missed))
    print(f"load at the end {' '.join(f'{x:.1f}' for x in os.getloadavg())}", file=sys.stderr)
    sys.exit(1 if missed else 0)


if __name__ == "__main__":
    main()
