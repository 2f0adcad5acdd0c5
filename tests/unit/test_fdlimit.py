"""The open-files limit is raised toward what a thousand sockets need, never past the hard."""

from __future__ import annotations

import resource

from rig.fdlimit import raise_open_files_limit


def test_the_soft_limit_rises_to_what_is_wanted_within_the_hard_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
        wanted = 4096 if hard == resource.RLIM_INFINITY else min(4096, hard)
        assert raise_open_files_limit(4096) == wanted
        assert resource.getrlimit(resource.RLIMIT_NOFILE) == (wanted, hard)
        # Already high enough: left alone.
        assert raise_open_files_limit(300) == wanted
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
