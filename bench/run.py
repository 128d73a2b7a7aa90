"""`make bench`: what the program costs per service, against the SDK floor, at N = 10, 100, 500.

Each measurement is a fresh process (so imports count, as they do for `pulumi up`), timed for
wall clock and peak resident memory. Results: a table on stdout and build/bench/results.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.diff import bench_diff
from bench.synthetic import ROOT, make_project

STACK = "prod"


def measure(args: list[str], env: dict[str, str] | None = None, repeat: int = 1, cwd: Path = ROOT) -> dict[str, float]:
    """Best-of-`repeat` wall time (each run's too: shared machines vary by a third from run to run)
    and the peak RSS of the child, in seconds and MiB (`make diff` records the base in a second
    process of about the same size, not counted here)."""
    peak, runs = 0.0, []
    for _ in range(repeat):
        start = time.perf_counter()
        proc = subprocess.Popen([sys.executable, *args], cwd=cwd, env={**os.environ, **(env or {})}, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - start
        out, err = proc.communicate()
        if os.waitstatus_to_exitcode(status) not in (0,):
            raise RuntimeError(f"{' '.join(args)} failed:\n{err.decode()[-2000:]}")
        peak = max(peak, usage.ru_maxrss / 1024)
        runs.append(round(elapsed, 3))
    return {"seconds": min(runs), "runs": runs, "peak_mib": round(peak, 1)}


def bench(n: int, work: Path, repeat: int) -> dict:
    project = make_project(work / f"n{n}", n)
    record = work / f"n{n}.json"
    # The program alone (what `pulumi up` runs), recording its resources for the floor.
    program = measure(["-m", "bench.program", STACK, str(project), str(record)], repeat=repeat)
    count = len(json.loads(record.read_text()))
    floor = measure(
        ["-m", "bench.program", STACK, str(project), "-", str(ROOT / "bench" / "floor.py")], env={"PLATFORM_FLOOR_RESOURCES": str(record)}, repeat=repeat
    )
    preview = measure(["-m", "engine.preview", STACK, "--root", str(project), "--out", str(work / f"n{n}-build")], repeat=1)
    return {
        "services": n,
        "resources": count,
        "resources_per_service": round(count / n, 1),
        "program": program,
        "floor": floor,
        "preview": preview,
        "ratio": round(program["seconds"] / floor["seconds"], 3),
        "ms_per_service": round(1000 * program["seconds"] / n, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make bench", description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 500])
    parser.add_argument("--repeat", type=int, default=2, help="best of this many runs per measurement")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "bench")
    parser.add_argument("--diff-size", type=int, default=500, help="services in the one-service pull request diff (0: skip it)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        rows = [bench(n, Path(tmp), args.repeat) for n in args.sizes]
        diff = bench_diff(args.diff_size, Path(tmp), measure) if args.diff_size else None
    print(f"{'N':>5} {'resources':>9} {'res/svc':>7} {'program s':>9} {'floor s':>8} {'ratio':>6} {'ms/svc':>7} {'preview s':>9} {'peak MiB':>8}")
    for r in rows:
        print(
            f"{r['services']:>5} {r['resources']:>9} {r['resources_per_service']:>7} {r['program']['seconds']:>9} {r['floor']['seconds']:>8} "
            f"{r['ratio']:>6} {r['ms_per_service']:>7} {r['preview']['seconds']:>9} {max(r['program']['peak_mib'], r['preview']['peak_mib']):>8}"
        )
    if len(rows) >= 2:
        last, prev = rows[-1], rows[-2]
        print(f"time per service at N={last['services']} is {last['ms_per_service'] / prev['ms_per_service']:.2f}x that at N={prev['services']}")
    if diff:
        for run in ("cold", "warm"):
            r, d = diff[run], diff[run]["diff"]
            print(
                f"one-service PR at N={diff['services']} ({run}): make diff STACK=prod took {d['seconds']} s (runs: {d['runs']}), peak {d['peak_mib']} MiB, "
                f"{r['changed_resources']} changed resource(s), {r['changed_manifests']} changed manifest(s); stacks previewed: {r['stacks']} "
                f"(goal: <= 10 s, < 1024 MiB, 1 and 1)"
            )
    (args.out / "results.json").write_text(json.dumps({"sizes": rows, "diff": diff}, indent=2) + "\n")
    print(f"wrote {args.out / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
