"""Start-up time of the `continuum` command, whole process, against `python -c pass`.

    .venv/bin/python bench/cli_startup.py            # installed (.venv/bin/continuum) and zipapp
    .venv/bin/python bench/cli_startup.py --runs 40  # more rounds (default 20)
    .venv/bin/python bench/cli_startup.py --no-zipapp
    .venv/bin/python bench/cli_startup.py --json

What a person waits for: `continuum --version`, `continuum --help`, and one TAB of the shell
completion (bash: the command names after `continuum `; zsh: the same with their help texts;
bash again on a subcommand's option value, `continuum env --shell `). Each is run as a new
process, the way the shell runs it, and timed from spawn to exit. The baseline is
`python -c pass` with the same interpreter: what any Python command costs before it does
anything. The child's CPU time (user + system, from wait4) is shown too: on a shared,
loaded machine it is the figure that does not include waiting for a core. Commands are measured in interleaved rounds (one of each per round), so background
load falls on all of them alike; the figure is the median over rounds, minus the baseline's
median (the minimum is shown too: on a loaded machine it is the steadier number).

The zipapp is built by `make zipapp` (shiv) into a temporary directory and run with the
base interpreter (not the venv's, whose site-packages would shadow the zipapp's), after one
run that extracts it (`SHIV_ROOT` in the same temporary directory).

Budgets (README): ≤ 120 ms over the baseline installed, ≤ 250 ms from the zipapp.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUDGETS_MS = {"installed": 120.0, "zipapp": 250.0}
COMPLETE = "_CONTINUUM_COMPLETE"


def cases() -> dict[str, tuple[list[str], dict[str, str]]]:
    """name -> (arguments after the program, extra environment)."""
    return {
        "--version": (["--version"], {}),
        "--help": (["--help"], {}),
        "TAB bash": ([], {COMPLETE: "complete_bash", "COMP_WORDS": "continuum ",
                          "COMP_CWORD": "1"}),
        "TAB zsh": ([], {COMPLETE: "complete_zsh", "_TYPER_COMPLETE_ARGS": "continuum "}),
        "TAB bash option value": ([], {COMPLETE: "complete_bash",
                                       "COMP_WORDS": "continuum env --shell ",
                                       "COMP_CWORD": "3"}),
    }


def run_once(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall ms, CPU ms) of one run: spawn to exit, and the child's user + system time."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    errors = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = (time.perf_counter() - started) * 1000
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}): {errors.decode()[-500:]}")
    return elapsed, (usage.ru_utime + usage.ru_stime) * 1000


def measure(program: list[str], python: str, env: dict[str, str], runs: int
            ) -> dict[str, dict[str, float]]:
    targets = {"python -c pass": ([python, "-c", "pass"], {})}
    targets.update({name: (program + args, extra) for name, (args, extra) in cases().items()})
    times: dict[str, list[float]] = {name: [] for name in targets}
    cpu: dict[str, list[float]] = {name: [] for name in targets}
    for argv, extra in targets.values():  # warm the page cache and any extraction
        run_once(argv, {**env, **extra})
    for _ in range(runs):
        for name, (argv, extra) in targets.items():
            wall, used = run_once(argv, {**env, **extra})
            times[name].append(wall)
            cpu[name].append(used)
    base = statistics.median(times["python -c pass"])
    base_min = min(times["python -c pass"])
    base_cpu = statistics.median(cpu["python -c pass"])
    return {name: {"median_ms": statistics.median(t), "min_ms": min(t),
                   "over_baseline_ms": statistics.median(t) - base,
                   "min_over_baseline_ms": min(t) - base_min,
                   "cpu_ms": statistics.median(cpu[name]),
                   "cpu_over_baseline_ms": statistics.median(cpu[name]) - base_cpu}
            for name, t in times.items()}


def installed(runs: int) -> dict[str, dict[str, float]]:
    venv_bin = Path(sys.executable).parent
    program = venv_bin / "continuum"
    if not program.exists():
        raise SystemExit(f"{program} not found: run `make venv` first")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH" or v}
    return measure([str(program)], sys.executable, env, runs)


def zipapp(runs: int) -> dict[str, dict[str, float]]:
    shiv = Path(sys.executable).parent / "shiv"
    base_python = _base_python()
    with tempfile.TemporaryDirectory() as tmp:
        pyz = Path(tmp) / "continuum.pyz"
        subprocess.run([str(shiv), "-c", "continuum", "-o", str(pyz), "-p",
                        "/usr/bin/env python3", "--reproducible", "--compile-pyc", str(ROOT)],
                       check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        env["SHIV_ROOT"] = str(Path(tmp) / "shiv")
        run_once([base_python, str(pyz), "--version"], env)  # the first extraction
        return measure([base_python, str(pyz)], base_python, env, runs)


def _base_python() -> str:
    name = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for candidate in (Path(sys.base_prefix) / "bin" / name, shutil.which(name)):
        if candidate and Path(candidate).exists():
            return str(candidate)
    raise SystemExit(f"{name} (the venv's base interpreter) not found")


def table(title: str, figures: dict[str, dict[str, float]], budget: float) -> str:
    lines = [f"{title} (budget: ≤ {budget:.0f} ms over python -c pass)",
             f"{'':24} {'median ms':>10} {'min ms':>8} {'over pass':>10} {'min over':>9} "
             f"{'CPU ms':>7} {'CPU over':>9}  ok"]
    for name, f in figures.items():
        over = f["over_baseline_ms"]
        ok = "" if name == "python -c pass" else ("yes" if over <= budget else "NO")
        lines.append(f"{name:24} {f['median_ms']:10.1f} {f['min_ms']:8.1f} "
                     f"{over:+10.1f} {f['min_over_baseline_ms']:+9.1f} {f['cpu_ms']:7.1f} "
                     f"{f['cpu_over_baseline_ms']:+9.1f}  {ok}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--no-zipapp", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = {"installed": installed(args.runs)}
    if not args.no_zipapp:
        results["zipapp"] = zipapp(args.runs)
    results_ok = all(f["over_baseline_ms"] <= BUDGETS_MS[kind]
                     for kind, figures in results.items()
                     for name, f in figures.items() if name != "python -c pass")
    if args.json:
        print(json.dumps({"results": results, "budgets_ms": BUDGETS_MS,
                          "load_average": os.getloadavg(), "all_within_budget": results_ok},
                         indent=2))
    else:
        print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        for kind, figures in results.items():
            print()
            print(table(kind, figures, BUDGETS_MS[kind]))
    return 0 if results_ok else 1


if __name__ == "__main__":
    sys.exit(main())
