"""Hypothesis profiles for the property-based tests in this directory.

``ci`` (the default) keeps the whole directory to well under a minute; ``long`` is the
thorough run, selected with ``XMPPD_FUZZ_PROFILE=long`` (see docs/testing.md). Deadlines are
off in both: the server-backed properties do network round trips whose time says nothing.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

PROFILE_VARIABLE = "XMPPD_FUZZ_PROFILE"

settings.register_profile("ci", max_examples=60, deadline=None, print_blob=True)
settings.register_profile(
    "long",
    max_examples=5000,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get(PROFILE_VARIABLE, "ci"))


def scaled(n: int) -> int:
    """``n`` examples under ``ci``, proportionally more under the loaded profile: for the
    properties whose examples are network round trips, which get a smaller budget."""
    return max(1, n * settings().max_examples // 60)
