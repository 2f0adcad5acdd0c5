"""Orchestration: ``rig compare``, ``rig capacity``, the mock as a child process, the
end-of-run report and verdict."""
