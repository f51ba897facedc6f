"""How many physical CPU cores this process may use: the embedded backend's default thread count.

llama.cpp runs best with one thread per physical core; hyper-threads add little and steal
from the router. Portable sources, best first:

* Linux: the topology in sysfs (`/sys/devices/system/cpu/cpuN/topology/core_cpus_list`, or
  `thread_siblings_list` on older kernels): CPUs sharing one list are one core. Only the CPUs
  this process may run on count (`os.sched_getaffinity`), so a container pinned to 2 of 64
  CPUs gets 2. Without sysfs: `/proc/cpuinfo`'s distinct (physical id, core id) pairs.
* macOS: `sysctl -n hw.physicalcpu`.
* Anywhere else, or when those fail: `os.cpu_count()` (logical CPUs).

The parsers take text and return numbers; `physical_cores()` does the reading.
"""

from __future__ import annotations

import os
import platform
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path

MAX_DEFAULT_THREADS = 8
SYS_CPU = Path("/sys/devices/system/cpu")


def default_threads(cores: int | None) -> int:
    """Threads for llama.cpp when `threads` is not configured: the physical cores, 1 to 8."""
    return max(1, min(MAX_DEFAULT_THREADS, cores or 1))


def cores_from_sibling_lists(lists: Mapping[int, str]) -> int | None:
    """`{cpu: "0-1" | "0,4" | ...}` (each CPU's core siblings) -> the number of cores."""
    cores = {_expand(text) for text in lists.values() if text.strip()}
    return len(cores) or None


def _expand(cpu_list: str) -> frozenset[int]:
    """Linux cpu-list syntax, "0-3,8,10-11"."""
    found: set[int] = set()
    for part in cpu_list.strip().split(","):
        first, _, last = part.partition("-")
        found.update(range(int(first), int(last or first) + 1))
    return frozenset(found)


def cores_from_cpuinfo(text: str, allowed: Iterable[int] | None = None) -> int | None:
    """Distinct (physical id, core id) pairs among the allowed processors in /proc/cpuinfo;
    None when it does not say (some ARM kernels list no core ids)."""
    keep = None if allowed is None else set(allowed)
    pairs = set()
    for block in text.split("\n\n"):
        fields = dict(_field(line) for line in block.splitlines() if ":" in line)
        if "core id" not in fields or "processor" not in fields:
            continue
        if keep is None or int(fields["processor"]) in keep:
            pairs.add((fields.get("physical id", "0"), fields["core id"]))
    return len(pairs) or None


def _field(line: str) -> tuple[str, str]:
    key, _, value = line.partition(":")
    return key.strip(), value.strip()


def physical_cores() -> int | None:
    """Physical cores this process may use; None when nothing could be told."""
    system = platform.system()
    found = _linux() if system == "Linux" else _macos() if system == "Darwin" else None
    return found or os.cpu_count()


def _allowed() -> set[int] | None:
    getter = getattr(os, "sched_getaffinity", None)
    return set(getter(0)) if getter is not None else None


def _linux() -> int | None:
    allowed = _allowed()
    lists: dict[int, str] = {}
    for cpu in sorted(allowed) if allowed is not None else []:
        topology = SYS_CPU / f"cpu{cpu}" / "topology"
        for name in ("core_cpus_list", "thread_siblings_list"):
            try:
                lists[cpu] = (topology / name).read_text()
                break
            except OSError:
                continue
    try:
        counted = cores_from_sibling_lists(lists)
    except ValueError:
        counted = None
    if counted:
        return counted
    try:
        return cores_from_cpuinfo(Path("/proc/cpuinfo").read_text(), allowed)
    except (OSError, ValueError):
        return None


def _macos() -> int | None:
    try:
        done = subprocess.run(["sysctl", "-n", "hw.physicalcpu"], capture_output=True,
                              text=True, timeout=5)
        return int(done.stdout.strip()) if done.returncode == 0 else None
    except (OSError, ValueError, subprocess.SubprocessError):
        return None
