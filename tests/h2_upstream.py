"""The mock provider's app served by Hypercorn, which speaks HTTP/2 (uvicorn does not): over
TLS with the ALPN protocols given, or over cleartext where HTTP/2 is spoken from the first
byte (prior knowledge). Each request is logged as ``protocol=<version> <method> <path> <status>``
(Hypercorn's access log, the server's own word on the protocol spoken).

    python -m tests.h2_upstream --port P [--certfile F --keyfile K] [--alpn h2,http/1.1]
        [--rpm N] [--api-key KEY ...] [--delta-tokens N] [--preset P] [--quiet]
"""

from __future__ import annotations

import argparse
import asyncio

from hypercorn.asyncio import serve
from hypercorn.config import Config

from rig.mock.server import MockConfig, create_app

READY = "Running on"
"""What Hypercorn logs once it listens."""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--certfile")
    parser.add_argument("--keyfile")
    parser.add_argument("--alpn", default="h2,http/1.1")
    parser.add_argument("--rpm", type=int, default=0)
    parser.add_argument("--api-key", action="append", default=[])
    parser.add_argument("--delta-tokens", type=int, default=1)
    parser.add_argument("--preset", default="instant", help="a preset name or YAML file")
    parser.add_argument("--quiet", action="store_true", help="no access log (benchmarks)")
    args = parser.parse_args()
    config = Config()
    config.bind = [f"127.0.0.1:{args.port}"]
    config.certfile = args.certfile
    config.keyfile = args.keyfile
    config.alpn_protocols = args.alpn.split(",")
    config.accesslog = None if args.quiet else "-"
    config.access_log_format = "protocol=%(H)s %(m)s %(U)s %(s)s"
    config.errorlog = "-"
    config.loglevel = "INFO"
    app = create_app(
        MockConfig(
            preset=args.preset,
            rpm=args.rpm,
            api_keys=tuple(args.api_key),
            delta_tokens=args.delta_tokens,
        )
    )
    asyncio.run(serve(app, config))  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
