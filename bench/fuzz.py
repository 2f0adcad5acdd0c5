"""The fuzz suite's properties (tests/fuzz) under Hypothesis's ``long`` profile: prints,
per property, how many examples ran, how many were invalid, how long it took, and what
failed (the falsifying example). Figures go to docs/reliability.md, "Hostile input".

    python bench/fuzz.py                 # 5,000 examples per property
    python bench/fuzz.py --examples 500  # a shorter run
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_TEST = re.compile(r"^tests/fuzz/test_mock_fuzz\.py::(\w+):")
_PHASE = re.compile(r"during (\w+) phase \(([\d.]+) seconds\)")
_COUNTS = re.compile(r"(\d+) passing examples, (\d+) failing examples, (\d+) invalid examples")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=5000, help="examples per property")
    args = parser.parse_args()
    env = {
        **os.environ,
        "HYPOTHESIS_PROFILE": "long",
        "RIG_FUZZ_EXAMPLES": str(args.examples),
        "PYTHONPATH": str(ROOT),
    }
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "--hypothesis-show-statistics", "tests/fuzz"],
        cwd=ROOT, env=env, capture_output=True, text=True,
    )  # fmt: skip
    elapsed = time.monotonic() - started
    output = done.stdout + done.stderr
    print(f"{'property':72} {'passed':>7} {'failed':>7} {'invalid':>8} {'seconds':>8}")
    total = 0
    current = None
    seconds = 0.0
    rows: dict[str, list[float]] = {}
    for line in output.splitlines():
        test = _TEST.match(line.strip())
        if test:
            current = test.group(1)
            rows[current] = [0, 0, 0, 0.0]
        phase = _PHASE.search(line)
        if phase:
            seconds = float(phase.group(2))
        counts = _COUNTS.search(line)
        if counts and current:
            row = rows[current]
            for index, value in enumerate(counts.groups()):
                row[index] += int(value)
            row[3] += seconds
    for name, (passed, failed, invalid, spent) in rows.items():
        total += int(passed + failed)
        print(f"{name:72} {passed:>7.0f} {failed:>7.0f} {invalid:>8.0f} {spent:>8.1f}")
    print(f"\n{total} examples in {elapsed:.0f} s; pytest exit code {done.returncode}")
    failures = [line for line in output.splitlines() if line.startswith(("FAILED", "E   "))]
    if failures:
        print("\nfailures:")
        print("\n".join(failures[:80]))
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
