"""Hypothesis profiles: ``ci`` (the test command: bounded and derandomised, so a run is
reproducible) and ``long`` (``HYPOTHESIS_PROFILE=long``, what ``bench/fuzz.py`` uses; ``RIG_FUZZ_EXAMPLES`` sets its examples per property)."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_common = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    "database": None,
}
settings.register_profile("ci", max_examples=120, derandomize=True, **_common)
settings.register_profile(
    "long", max_examples=int(os.environ.get("RIG_FUZZ_EXAMPLES", "5000")), **_common
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
