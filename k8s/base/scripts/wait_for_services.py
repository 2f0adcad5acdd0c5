"""Wait until the services a load process needs are usable, then exit 0 (1 at the deadline).

    python wait_for_services.py [--timeout SECONDS] [--influx] [URL...]

- each URL: answers HTTP with any status below 500 (an API root may well say 404 or 401;
  the point is that the target is up and reachable);
- ``--influx``: an empty write to the bucket succeeds, which is what the rig's InfluxDB
  sink checks when it starts (it refuses to start while the setup Job has not yet created
  the bucket). Reads INFLUX_URL, INFLUX_ORG, INFLUX_BUCKET and INFLUX_TOKEN.

Standard library only; the token is never printed.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable


def reachable(url: str) -> Callable[[], str | None]:
    """A probe: the answer's status as text, or ``None`` while the service is not up."""

    def probe() -> str | None:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return str(response.status)
        except urllib.error.HTTPError as error:
            return None if error.code >= 500 else str(error.code)
        except (OSError, ValueError):
            return None

    return probe


def influx_writable() -> tuple[str, Callable[[], str | None]]:
    """A probe that posts an empty write to the bucket (InfluxDB 2.x API)."""
    base = os.environ["INFLUX_URL"].rstrip("/")
    query = urllib.parse.urlencode(
        {"org": os.environ["INFLUX_ORG"], "bucket": os.environ["INFLUX_BUCKET"]}
    )
    url = f"{base}/api/v2/write?{query}"
    headers = {"Authorization": f"Token {os.environ['INFLUX_TOKEN']}"}

    def probe() -> str | None:
        request = urllib.request.Request(url, data=b"", headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return str(response.status)
        except (OSError, ValueError):  # HTTPError too: 401/404 until the setup Job is done
            return None

    return f"InfluxDB bucket at {url}", probe


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("urls", nargs="*", metavar="URL")
    parser.add_argument("--influx", action="store_true", help="wait until the bucket is writable")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds (default 600)")
    options = parser.parse_args(argv)
    probes = [(url, reachable(url)) for url in options.urls]
    if options.influx:
        probes.append(influx_writable())
    deadline = time.monotonic() + options.timeout
    for name, probe in probes:
        while (status := probe()) is None:
            if time.monotonic() > deadline:
                print(f"{name} not ready after {options.timeout:.0f} s", file=sys.stderr)
                return 1
            time.sleep(1.0)
        print(f"{name} answered {status}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
