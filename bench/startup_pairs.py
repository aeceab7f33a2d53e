"""Start-up of two source trees, in interleaved pairs: CPU of the start-up imports and start → `/health` 200.

    python bench/startup_pairs.py /tmp/base-tree . --pairs 15

Each tree is a checkout (e.g. `git archive <commit> | tar -x -C /tmp/base-tree`). For every pair the two trees run
one after the other, alternating which goes first, so load on a shared machine hits both alike:
- CPU (user + system) of a process that imports what `uvicorn --factory gateway.app:create_app` imports and builds
  the app, and of one that builds the `kiro-gateway serve` parser and imports what `serve` needs;
- wall time from spawning `uvicorn --factory` / `python -m gateway.cli serve` to `/health` answering 200.
Prints the median and the minimum of each. CPU is the steadier figure under load.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_gateway import start_to_ready

CPU_CODE = {
    "cpu factory": "from gateway.app import create_app; from gateway.settings import Settings; create_app(Settings())",
    "cpu serve": "import gateway.cli as c; c.build_parser(*(['serve'] if hasattr(c, 'COMMANDS') else [])); "
                 "import gateway.app, uvicorn, httpx",
}


def environment(root: Path, home: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KIRO", "PROXY"))}
    env.update(PYTHONPATH=f"{root}{os.pathsep}{root / 'functions'}", HOME=home, PROXY_API_KEY="bench-key",
               KIRO_API_KEY="ksk_" + "a" * 24)
    return env


def cpu_ms(code: str, env: dict[str, str], cwd: Path) -> float:
    process = subprocess.Popen([sys.executable, "-c", code], env=env, cwd=cwd)
    _, status, usage = os.wait4(process.pid, 0)
    if status != 0:
        raise RuntimeError(f"{code!r} failed in {cwd}")
    return (usage.ru_utime + usage.ru_stime) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("trees", nargs=2, type=Path, help="the two source trees (before, after)")
    parser.add_argument("--pairs", type=int, default=10)
    args = parser.parse_args()
    home = tempfile.mkdtemp()
    trees = [tree.resolve() for tree in args.trees]
    figures: dict[tuple[str, str], list[float]] = {}
    for index in range(args.pairs):
        for tree in trees if index % 2 == 0 else reversed(trees):
            env = environment(tree, home)
            for name, code in CPU_CODE.items():
                figures.setdefault((str(tree), name), []).append(cpu_ms(code, env, tree))
            os.chdir(tree)
            figures.setdefault((str(tree), "wall uvicorn --factory"), []).append(start_to_ready(
                [sys.executable, "-m", "uvicorn", "--factory", "gateway.app:create_app", "--no-access-log"], env))
            figures.setdefault((str(tree), "wall kiro-gateway serve"), []).append(
                start_to_ready([sys.executable, "-m", "gateway.cli", "serve"], env))
    for (tree, name), values in figures.items():
        print(f"{tree}  {name:<24} median {statistics.median(values):8.1f} ms  min {min(values):8.1f} ms  "
              f"n={len(values)}")


if __name__ == "__main__":
    main()
