"""One agent task against a target, its turns printed as JSON lines: a child process the
link tests run inside a network namespace or on the host's loopback.

``python3 -m tests.link_probe URL TRANSPORT [LINK]`` (LINK: a name or profile file;
default ``direct``).
"""

from __future__ import annotations

import sys

import orjson

from rig.loadgen.link import LinkProfile, load_link
from rig.loadgen.session import AgentSession, SessionConfig
from rig.loadgen.target import Target
from rig.metrics.records import RecordTags, TaskRecord, TurnRecord, record_to_dict
from rig.workload.scenarios import builtin_scenarios

SCENARIO = builtin_scenarios()["fix_failing_test"]


def run_task(
    url: str, transport: str, link: LinkProfile | None, run_id: str = "probe"
) -> tuple[TaskRecord, list[TurnRecord]]:
    """One task of the ``fix_failing_test`` scenario over ``link`` (``None``: none): its
    task record and its turns."""
    records: list = []
    config = SessionConfig(
        transport=transport,
        scenario=SCENARIO,
        target=Target.from_url(url),
        tags=RecordTags(
            run_id, SCENARIO.name, transport, "mock", link=link.name if link else "direct"
        ),
        time_scale=0.0,
        link=link,
    )
    session = AgentSession(config, records.append)
    try:
        task = session.run_task()
    finally:
        session.close()
    return task, [r for r in records if isinstance(r, TurnRecord)]


def main(argv: list[str]) -> int:
    url, transport = argv[0], argv[1]
    link = load_link(argv[2] if len(argv) > 2 else "direct")
    task, turns = run_task(url, transport, link)
    for record in turns:
        sys.stdout.write(orjson.dumps(record_to_dict(record)).decode() + "\n")
    return 0 if task.ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
