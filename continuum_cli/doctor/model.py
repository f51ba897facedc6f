"""The values doctor passes around: one check's verdict, and what an HTTP probe saw.

Probes (I/O) produce `HttpOutcome`s; pure functions in `checks.py` turn them into
`CheckResult`s, so every verdict and every fix text is table-tested without a network.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

Status = Literal["pass", "fail", "warn", "skip"]


@dataclass(frozen=True)
class CheckResult:
    """One line of the report: ✓ / ✗ / ! / - , one line of evidence, and the fix."""

    name: str
    status: Status
    evidence: str
    fix: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def passed(name: str, evidence: str) -> CheckResult:
    return CheckResult(name, "pass", evidence)


def failed(name: str, evidence: str, fix: str) -> CheckResult:
    return CheckResult(name, "fail", evidence, fix)


def warned(name: str, evidence: str, fix: str | None = None) -> CheckResult:
    return CheckResult(name, "warn", evidence, fix)


def skipped(name: str, evidence: str, fix: str | None = None) -> CheckResult:
    return CheckResult(name, "skip", evidence, fix)


@dataclass(frozen=True)
class HttpOutcome:
    """What one HTTP request saw: a status and parsed JSON body, or a transport error."""

    status: int | None = None
    body: Any = None
    error: str | None = None
    elapsed_ms: float = 0.0

    @property
    def reached(self) -> bool:
        return self.status is not None

    def error_message(self) -> str:
        """The message of an Anthropic or OpenAI error envelope, else a short body excerpt."""
        body = self.body
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            return str(body["error"].get("message") or body["error"])
        if isinstance(body, dict) and isinstance(body.get("detail"), (str, list)):
            return str(body["detail"])[:300]
        return str(body)[:300] if body not in (None, "") else ""
