"""``rig locust --help`` shows the rig's options, which Locust's own --help cannot."""

from __future__ import annotations

import subprocess
import sys


def test_rig_locust_help_lists_the_rigs_options_then_locusts() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "rig", "locust", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    for option in ("--target-url", "--transports", "--sink", "--influx-url", "--check"):
        assert option in done.stdout, option
    assert done.stdout.index("--target-url") < done.stdout.index("Common options")
    assert "--headless" in done.stdout
