"""Physical cores for the embedded backend's default thread count: parsers on captured text,
and the whole lookup on this machine."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from continuum_cli.backends.cpus import (
    cores_from_cpuinfo,
    cores_from_sibling_lists,
    default_threads,
    physical_cores,
)
from continuum_cli.backends.embedded import child_config
from continuum_cli.config.models import Backend


@pytest.mark.parametrize(("cores", "threads"), [
    (None, 1), (0, 1), (1, 1), (2, 2), (6, 6), (8, 8), (64, 8)])
def test_default_threads_is_the_cores_between_1_and_8(cores: int | None, threads: int) -> None:
    assert default_threads(cores) == threads


@pytest.mark.parametrize(("lists", "cores"), [
    ({0: "0\n", 1: "1\n"}, 2),                                 # 2 cores, no SMT
    ({0: "0-1", 1: "0-1", 2: "2-3", 3: "2-3"}, 2),             # 2 cores x 2 threads
    ({0: "0,4", 1: "1,5", 2: "2,6", 3: "3,7", 4: "0,4", 5: "1,5", 6: "2,6", 7: "3,7"}, 4),
    ({0: "0,32"}, 1),                                          # pinned to one thread of a core
    ({}, None),
])
def test_cores_from_sibling_lists(lists: dict[int, str], cores: int | None) -> None:
    assert cores_from_sibling_lists(lists) == cores


CPUINFO_2X2 = "\n\n".join(
    f"processor\t: {n}\nphysical id\t: 0\ncore id\t\t: {n // 2}\ncpu cores\t: 2"
    for n in range(4))
CPUINFO_2_SOCKETS = "\n\n".join(
    f"processor\t: {n}\nphysical id\t: {n // 2}\ncore id\t\t: 0" for n in range(4))
CPUINFO_ARM = "processor\t: 0\nBogoMIPS\t: 50.00\n\nprocessor\t: 1\nBogoMIPS\t: 50.00"


@pytest.mark.parametrize(("text", "allowed", "cores"), [
    (CPUINFO_2X2, None, 2),
    (CPUINFO_2X2, [0, 1], 1),         # both allowed CPUs are threads of core 0
    (CPUINFO_2_SOCKETS, None, 2),     # core id 0 on each of two sockets
    (CPUINFO_ARM, None, None),        # no core ids: the caller falls back to os.cpu_count()
])
def test_cores_from_cpuinfo(text: str, allowed: list[int] | None, cores: int | None) -> None:
    assert cores_from_cpuinfo(text, allowed) == cores


def test_this_machine() -> None:
    cores = physical_cores()
    assert cores is not None and 1 <= cores <= (os.cpu_count() or 1)
    if shutil.which("lscpu") and Path("/sys/devices/system/cpu").is_dir():
        # lscpu's own count of (socket, core) pairs among online CPUs we may use
        out = subprocess.run(["lscpu", "-p=CPU,CORE,SOCKET"], capture_output=True, text=True,
                             timeout=10).stdout
        allowed = os.sched_getaffinity(0)
        pairs = {tuple(line.split(",")[1:3]) for line in out.splitlines()
                 if line and not line.startswith("#") and int(line.split(",")[0]) in allowed}
        assert cores == len(pairs)


def test_the_child_gets_the_default_unless_threads_is_set(tmp_path: Path) -> None:
    model = tmp_path / "m.gguf"
    unset = Backend(name="e", type="embedded", model_path=str(model))
    assert child_config(unset, model)["threads"] == default_threads(physical_cores())
    assert child_config(unset.model_copy(update={"threads": 3}), model)["threads"] == 3
