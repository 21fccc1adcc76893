"""`make bench`: run every benchmark module in bench/ (bench_*.py), one subprocess each.

    python -m bench                          # every bench, default (quick) sizes
    python -m bench --only catalog storage   # some of them
    python -m bench --full                   # every bench at its own full default sizes

Each bench's output streams as it runs; a summary of each one's closing figures (its last
lines) and exit status follows at the end. Exit status 1 when any bench failed or missed
its budget.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections import deque
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent

#: Arguments for the default (quick) run; ``--full`` drops them. The storage bench moves a
#: 1 GiB file by default; 256 MiB shows the same flat memory and throughput ratios.
# `make bench` runs quicker sizes; `python -m bench --full` runs the sizes the issues name.
QUICK_ARGS: dict[str, list[str]] = {
    "bench_storage": ["--size-mib", "256"],
    "bench_download": ["--size-mib", "256"],
    # The analytics migration is timed on 200,000 orders here and 1,000,000 with --full.
    "bench_dashboard": ["--orders", "200000", "--migration-orders", "200000"],
    "bench_limits": ["--upload-mib", "256", "--stripe-mib", "128"],
}
CLOSING_LINES = 6


def bench_modules() -> list[str]:
    return sorted(p.stem for p in BENCH_DIR.glob("bench_*.py"))


def run_one(name: str, full: bool) -> tuple[int, list[str], float]:
    """Run ``python -m bench.<name>``, streaming its output; (exit status, last lines, seconds)."""
    cmd = [sys.executable, "-m", f"bench.{name}", *([] if full else QUICK_ARGS.get(name, []))]
    print(f"\n##### {name}: {' '.join(cmd[1:])}", flush=True)
    start = time.perf_counter()
    tail: deque[str] = deque(maxlen=CLOSING_LINES)
    with subprocess.Popen(
        cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            print(line, end="", flush=True)
            if line.strip():
                tail.append(line.rstrip())
        status = proc.wait()
    return status, list(tail), time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    names = bench_modules()
    short = [n.removeprefix("bench_") for n in names]
    parser.add_argument("--only", nargs="+", choices=short, help="run only these benches")
    parser.add_argument("--full", action="store_true", help="full sizes (each bench's own defaults)")
    args = parser.parse_args(argv)
    chosen = [n for n in names if args.only is None or n.removeprefix("bench_") in args.only]
    results = {name: run_one(name, args.full) for name in chosen}
    print("\n##### summary")
    for name, (status, tail, seconds) in results.items():
        verdict = "ok" if status == 0 else f"FAILED (exit {status})"
        print(f"\n{name}: {verdict}, {seconds:.0f} s")
        for line in tail:
            print(f"    {line}")
    return 0 if all(status == 0 for status, _, _ in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
