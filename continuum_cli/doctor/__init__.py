"""`continuum doctor` without the printing: every Troubleshooting item of the seed as a check.

    report = await run_doctor(DoctorOptions(config=None, url=None, offline=False))
    report.results  # [CheckResult(name, status, evidence, fix), ...]

`checks` and `client` hold the pure verdicts (table-tested), `probes` the I/O, `runner` the
concurrent orchestration. The CLI (`continuum_cli/cli/doctor.py`) only renders.
"""

from __future__ import annotations

from continuum_cli.doctor.model import CheckResult, HttpOutcome, Status
from continuum_cli.doctor.runner import GROUPS, DoctorOptions, Report, run_doctor

__all__ = ["GROUPS", "CheckResult", "DoctorOptions", "HttpOutcome", "Report", "Status",
           "run_doctor"]
