"""Report figures in human units: seconds, milliseconds, kilobytes, percentages, Gbps.

KB and MB are decimal (1 KB = 1,000 bytes), like the Gbps of the projection. ``None`` (no
data) prints as ``n/a``.
"""

from __future__ import annotations

__all__ = [
    "NO_DATA",
    "format_bytes",
    "format_delta",
    "format_gbps",
    "format_ms",
    "format_seconds",
    "format_share",
]

NO_DATA = "n/a"
"""What a figure without data prints as."""


def _digits(value: float) -> int:
    magnitude = abs(value)
    if magnitude >= 100:
        return 0
    if magnitude >= 10:
        return 1
    return 2


def format_seconds(seconds: float | None) -> str:
    """``40.8 s``; under a second in milliseconds (``120 ms``)."""
    if seconds is None:
        return NO_DATA
    if abs(seconds) < 1:
        return format_ms(seconds * 1000)
    return f"{seconds:,.{_digits(seconds)}f} s"


def format_ms(ms: float | None) -> str:
    """``1,253 ms``, ``45.2 ms``, ``0.42 ms``."""
    if ms is None:
        return NO_DATA
    return f"{ms:,.{_digits(ms)}f} ms"


def format_bytes(count: float | None) -> str:
    """``176 KB``, ``2.71 KB``, ``1.23 MB``, ``812 B``."""
    if count is None:
        return NO_DATA
    if abs(count) >= 1_000_000:
        value, unit = count / 1_000_000, "MB"
    elif abs(count) >= 1_000:
        value, unit = count / 1_000, "KB"
    else:
        return f"{count:,.0f} B"
    return f"{value:,.{_digits(value)}f} {unit}"


def format_delta(change: float | None) -> str:
    """A relative change as a signed percentage: ``-82%``, ``+5%``, ``-0.4%``, ``0%``."""
    if change is None:
        return NO_DATA
    percent = change * 100
    if abs(percent) < 0.05:
        return "0%"
    digits = 1 if round(percent) == 0 else 0
    return f"{percent:+.{digits}f}%"


def format_gbps(gbps: float | None) -> str:
    """``28.8 Gbps``, ``0.088 Gbps``, ``1,440 Gbps``."""
    if gbps is None:
        return NO_DATA
    magnitude = abs(gbps)
    digits = 0 if magnitude >= 100 else 1 if magnitude >= 10 else 2 if magnitude >= 1 else 3
    return f"{gbps:,.{digits}f} Gbps"


def format_share(fraction: float | None) -> str:
    """A share of a whole as a percentage: ``100%``, ``92%``, ``99.8%``, ``7.5%``, ``0%``;
    only a whole reads ``100%`` and only nothing ``0%`` (``99.9%``, ``<0.1%`` nearby)."""
    if fraction is None:
        return NO_DATA
    percent = fraction * 100
    if percent in (0, 100) or 10 <= percent < 99.5:
        return f"{percent:.0f}%"
    if percent < 0.1:
        return "<0.1%"
    return f"{min(percent, 99.9):.1f}%"
