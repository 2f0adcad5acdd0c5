"""The exceptions of the report, workload, metrics and dashboards packages: each is a
:class:`rig.errors.RigError` (callers catch that, not a tuple) and says in its docstring's
first line what went wrong."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

from rig.errors import RigError

_PACKAGES = ("rig.report", "rig.workload", "rig.metrics", "rig.dashboards")


def _exceptions() -> list[type[BaseException]]:
    found: list[type[BaseException]] = []
    for package_name in _PACKAGES:
        package = importlib.import_module(package_name)
        names = [package_name] + [
            f"{package_name}.{info.name}" for info in pkgutil.iter_modules(package.__path__)
        ]
        for name in names:
            module = importlib.import_module(name)
            found += [
                value
                for value in vars(module).values()
                if inspect.isclass(value)
                and issubclass(value, BaseException)
                and value.__module__ == name
            ]
    return found


EXCEPTIONS = _exceptions()


def test_the_packages_define_exceptions_to_check() -> None:
    names = {cls.__name__ for cls in EXCEPTIONS}
    assert {"ReportError", "CorpusError", "RunDirectoryError", "PushError"} <= names


@pytest.mark.parametrize("cls", EXCEPTIONS, ids=lambda cls: f"{cls.__module__}.{cls.__name__}")
def test_each_exception_is_a_rig_error_with_a_one_line_summary(
    cls: type[BaseException],
) -> None:
    assert issubclass(cls, RigError)
    summary = (cls.__doc__ or "").strip().splitlines()
    assert summary and summary[0].strip().endswith((".", ")")), cls.__doc__
    assert len(summary) == 1 or summary[1].strip() == "", "summary line, a blank line, details"
