"""The report's exceptions: a run that cannot be reported, a check that cannot be read."""

from __future__ import annotations

from rig.errors import RigError

__all__ = ["CheckError", "ReportError"]


class ReportError(RigError, ValueError):
    """A run directory cannot be turned into a report (missing, empty or malformed)."""


class CheckError(ReportError):
    """A threshold expression is malformed or names a figure the summary does not have."""
