#!/usr/bin/python3
"""The full randomized kill matrix: `make stress` (ITERATIONS=N). Prints each case and the number of leaks (expected 0)."""
import os
import random
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "system"))
import killmatrix  # noqa: E402


def main():
    iterations = int(os.environ.get("ITERATIONS", "200"))
    seed = int(os.environ.get("SEED", str(random.randrange(1 << 30))))
    rng = random.Random(seed)
    print(f"kill matrix: {iterations} iterations, SEED={seed}", flush=True)
    leaks = 0
    with tempfile.TemporaryDirectory() as d:
        for i in range(iterations):
            phase, victim = rng.choice(killmatrix.PHASES), rng.choice(killmatrix.VICTIMS)
            user = rng.choice(killmatrix.USERS)
            features = rng.sample(killmatrix.FEATURES, rng.randrange(len(killmatrix.FEATURES) + 1))
            left, what = killmatrix.run_case(d, f"stress{i % 4}", phase, victim, user=user, features=features)
            status = "ok" if not left else f"LEAK {left}"
            leaks += bool(left)
            print(f"{i + 1:4d} {what:32s} {status}", flush=True)
    print(f"{iterations - leaks} passed, {leaks} failed")
    print(f"leaks found: {leaks}")
    return 1 if leaks else 0


if __name__ == "__main__":
    sys.exit(main())
