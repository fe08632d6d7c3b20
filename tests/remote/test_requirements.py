"""What a stage needs on another host: distributions found from its pickle, at this side's versions."""
from __future__ import annotations

import importlib
import importlib.metadata
import sys
from pathlib import Path

import pytest

from tests.remote.hostb import build_tiny_wheel, install_here
from wiredprof.remote.requirements import (
    StageNeeds,
    UnknownDistributionError,
    merge_needs,
    needs_of_modules,
    referenced_modules,
    stage_needs,
)


@pytest.fixture
def tiny(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    site = tmp_path / "a" / "site-packages"
    install_here(build_tiny_wheel(tmp_path / "build"), site)
    monkeypatch.syspath_prepend(str(site))
    yield importlib.import_module("wptiny")
    sys.modules.pop("wptiny", None)


def test_a_module_global_and_a_function_are_found_with_this_sides_version(tiny) -> None:
    import tabulate

    def uses_module(rows):
        return tiny.render(rows)

    render = tiny.render

    def uses_function(x):
        return render(x), tabulate.tabulate([[x]])

    assert stage_needs(uses_module).pins == ["wptiny==1.2.3"]
    assert stage_needs(uses_function).pins == ["tabulate==" + importlib.metadata.version("tabulate"), "wptiny==1.2.3"]


def test_an_import_inside_the_body_is_found(tiny) -> None:
    def imports_late(x):
        import wptiny as w

        return w.render(x)

    assert "wptiny" in referenced_modules(imports_late)
    needs = stage_needs(imports_late)
    assert [(d.name, d.direct) for d in needs.distributions] == [("wptiny", True)]


def test_stdlib_own_code_and_cloudpickle_need_nothing() -> None:
    import json

    def plain(x):
        return json.dumps({"x": x, "local": _helper(x)})

    assert stage_needs(plain) == StageNeeds((), ())


def _helper(x: int) -> int:
    return x + 1


def test_what_a_distribution_requires_comes_along_at_this_sides_versions() -> None:
    needs = needs_of_modules(["paramiko"])
    names = {d.key: d for d in needs.distributions}
    assert names["paramiko"].direct and names["paramiko"].version == importlib.metadata.version("paramiko")
    # paramiko requires cryptography (and bcrypt, pynacl): pinned too, marked as dependencies
    assert not names["cryptography"].direct
    assert names["cryptography"].version == importlib.metadata.version("cryptography")


def test_a_module_no_distribution_owns_is_refused_by_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site-packages"
    site.mkdir()
    (site / "handcopied.py").write_text("VALUE = 3\n")
    monkeypatch.syspath_prepend(str(site))
    try:
        mod = importlib.import_module("handcopied")

        def uses(x):
            return mod.VALUE * x

        needs = stage_needs(uses)
        assert needs.unknown_modules == ("handcopied",) and needs.distributions == ()
        with pytest.raises(UnknownDistributionError) as err:
            needs.check_known("pipeline_3.core_logic")
        assert "handcopied" in str(err.value) and "pip" in str(err.value) and err.value.exit_code == 2
    finally:
        sys.modules.pop("handcopied", None)


def test_needs_travel_as_json_and_merge(tiny) -> None:
    a = needs_of_modules(["wptiny"])
    b = needs_of_modules(["tabulate"])
    assert StageNeeds.from_json(a.to_json()) == a
    merged = merge_needs([a, b, a])
    assert merged.pins == sorted(a.pins + b.pins)


def test_own_code_imported_in_a_body_is_not_a_distribution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "myhelper.py").write_text("VALUE = 2\n")
    monkeypatch.syspath_prepend(str(project))

    def late(x):
        import myhelper

        return myhelper.VALUE * x

    try:
        assert stage_needs(late) == StageNeeds((), ())
    finally:
        sys.modules.pop("myhelper", None)
