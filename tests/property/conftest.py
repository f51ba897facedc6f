"""Hypothesis profiles for the property tests.

`ci` (the default, what `make test` runs): deterministic (derandomized, no example
database), sized so the whole property suite takes well under a minute on a 2-core machine.
`fuzz` (`make fuzz`): 20 times the examples, random seeds, the example database kept in
`.hypothesis/` so a failure found once is tried first next time.
Select one with HYPOTHESIS_PROFILE=ci|fuzz.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_SLOW_OK = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
            HealthCheck.function_scoped_fixture]
settings.register_profile("ci", deadline=None, derandomize=True, database=None,
                          print_blob=True, suppress_health_check=_SLOW_OK)
settings.register_profile("fuzz", deadline=None, print_blob=True,
                          suppress_health_check=_SLOW_OK)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
settings.load_profile(PROFILE)
SCALE = {"ci": 1, "fuzz": 20}.get(PROFILE, 1)


def examples(ci: int) -> int:
    """The example count for a test: `ci` in the ci profile, scaled up for fuzzing."""
    return ci * SCALE
