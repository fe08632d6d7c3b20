"""The CLI: real runs end to end, and bad input as one line with exit 2."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from wiredprof.cli import cli

ROOT = Path(__file__).resolve().parents[2]


def _invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def _assert_one_line_error(result, *needles: str) -> None:
    assert result.exit_code == 2, result.output + result.stderr
    err = result.stderr.strip()
    assert err.count("\n") == 0, err
    assert "Traceback" not in err
    for n in needles:
        assert n in err, err


@pytest.mark.slow
def test_analyze_json_saves_and_show_renders_it_again(flows, tmp_path):
    out = tmp_path / "p.json"
    r = _invoke("analyze", str(flows / "plain_small.py"), "--runs", "3", "--json", "-o", str(out))
    assert r.exit_code == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["schema"] == "wiredprof.profile/1"
    for key in ("flow", "wall_s", "pipelines", "stages", "bottleneck"):
        assert key in data
    stage_keys = {"pipeline", "stage", "kind", "calls", "total_s", "mean_s", "p95_s", "cpu_s", "host", "errors"}
    assert stage_keys <= set(data["stages"][0])
    assert {"pipeline", "stage", "reason"} <= set(data["bottleneck"])
    assert json.loads(out.read_text()) == data

    shown = _invoke("show", str(out))
    assert shown.exit_code == 0
    assert "pipeline_3.core_logic" in shown.stdout and "Bottleneck:" in shown.stdout


@pytest.mark.slow
def test_compare_reports_change_and_fails_past_max_regression(flows, tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    assert _invoke("analyze", str(flows / "plain_small.py"), "--runs", "2", "-q", "-o", str(a)).exit_code == 0
    data = json.loads(a.read_text())
    for s in data["stages"]:
        s["mean_s"] *= 2  # the same flow, twice as slow
    b.write_text(json.dumps(data))
    ok = _invoke("compare", str(a), str(b))
    assert ok.exit_code == 0 and "+100.0 %" in ok.stdout
    bad = _invoke("compare", str(a), str(b), "--max-regression", "50")
    assert bad.exit_code == 1
    assert "regression past 50 %" in bad.stderr
    better = _invoke("compare", str(b), str(a), "--max-regression", "5")
    assert better.exit_code == 0 and "2.00x faster" in better.stdout


def test_missing_flow_file(tmp_path):
    _assert_one_line_error(_invoke("analyze", str(tmp_path / "missing.py")), "missing.py", "no such flow file")


def test_flow_raising_on_import(flows):
    _assert_one_line_error(_invoke("analyze", str(flows / "raises_on_import.py"), "--duration", "2"),
                           "ImportError", "secret_sauce")


def test_flow_with_no_stages(flows):
    _assert_one_line_error(_invoke("analyze", str(flows / "no_stages.py"), "--duration", "2"),
                           "no pipeline stage was seen")


@pytest.mark.parametrize("value", ["abc", "0", "-3", "inf"])
def test_bad_duration(flows, value):
    _assert_one_line_error(_invoke("analyze", str(flows / "plain_small.py"), "--duration", value), "--duration")


@pytest.mark.parametrize("content,needle", [
    ("{not json", "corrupt JSON"),
    ('{"schema": "pyinstrument.session/1"}', "schema is 'pyinstrument.session/1'"),
    ('{"schema": "wiredprof.profile/1", "flow": "x"}', "missing key"),
    ("[1, 2]", "not a JSON object"),
])
def test_corrupt_or_foreign_profile(tmp_path, content, needle):
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    _assert_one_line_error(_invoke("show", str(bad)), "not a wiredprof profile", needle)
    _assert_one_line_error(_invoke("compare", str(bad), str(bad)), "not a wiredprof profile")


def test_missing_profile(tmp_path):
    _assert_one_line_error(_invoke("show", str(tmp_path / "none.json")), "no such profile file")


def test_python_dash_m_and_exit_code_2_in_a_real_process(tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "wiredprof", "analyze", str(tmp_path / "nope.py")],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )
    assert r.returncode == 2
    assert r.stderr.strip() == f"wiredprof: error: {tmp_path / 'nope.py'}: no such flow file"


@pytest.mark.parametrize("command", ["analyze", "run"])
def test_an_unwritable_output_path_is_refused_before_the_run(flows, tmp_path, command):
    started = time.monotonic()
    result = _invoke(command, str(flows / "plain_small.py"), "--duration", "30", "-o",
                     str(tmp_path / "no" / "such" / "dir" / "p.json"))
    _assert_one_line_error(result, "does not exist")
    assert time.monotonic() - started < 20  # it did not run the flow first


@pytest.mark.parametrize("value", ["nan", "inf", "-1", "soon"])
def test_offload_refuses_a_timeout_that_is_not_a_positive_number(value):
    result = _invoke("offload", "--stage", "core_logic", "--host", "B", "--timeout", value)
    _assert_one_line_error(result, "--timeout must be a positive, finite number")


def test_a_misspelt_table_in_the_config_is_one_line(project_dir):
    (project_dir / "wiredprof.toml").write_text('[ofload."p.s"]\nhost = "B"\n')
    _assert_one_line_error(_invoke("offload", "--list"), "unknown table(s) ofload")


def test_a_config_that_is_not_utf8_is_one_line(project_dir):
    (project_dir / "wiredprof.toml").write_bytes(b'[hosts.B]\naddress = "m\xe9@big"\n')
    _assert_one_line_error(_invoke("offload", "--list"), "not UTF-8")


def test_a_config_that_is_a_directory_is_one_line(project_dir):
    (project_dir / "wiredprof.toml").mkdir()
    _assert_one_line_error(_invoke("offload", "--list"), "is not a file")


def test_offload_default_timeout_is_ten_times_p95_at_least_a_minute():
    import dataclasses

    from tests.profiles import reference
    from wiredprof.commands.offload import default_timeout

    profile = reference()  # core_logic: p95 6 s
    assert default_timeout(profile, "pipeline_3.core_logic") == (60.0, "10x its p95 of 6 s, at least 60 s")
    slow = dataclasses.replace(profile, stages=[dataclasses.replace(s, p95_s=42.3) if s.stage == "core_logic" else s
                                                for s in profile.stages])
    assert default_timeout(slow, "pipeline_3.core_logic")[0] == 423.0
    assert default_timeout(None, "pipeline_3.core_logic") == (600.0, "no profile of this stage yet")


def test_the_command_list_matches_each_command_and_imports_none_of_them():
    from wiredprof.cli import COMMANDS, load_command

    for name, (_, short_help) in COMMANDS.items():
        command = load_command(name)
        assert command.name == name
        assert (command.help or "").strip().splitlines()[0] == short_help, name
    code = ("import sys, wiredprof.cli; from click.testing import CliRunner;"
            "r = CliRunner().invoke(wiredprof.cli.cli, ['--help']);"
            "heavy = [m for m in ('paramiko', 'cryptography', 'cloudpickle', 'pyinstrument', 'ddsketch',"
            " 'wiredprof.commands') if m in sys.modules];"
            "print(r.exit_code, heavy, r.output.count('\\n'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    exit_code, heavy, _ = out.stdout.split(" ", 2)
    assert exit_code == "0" and heavy.startswith("[]"), out.stdout
    help_text = _invoke("--help").output
    for name in COMMANDS:
        assert f"  {name} " in help_text


def test_an_unknown_command_is_a_usage_error():
    result = CliRunner().invoke(cli, ["analyse"])
    assert result.exit_code == 2
    assert "No such command 'analyse'" in result.output


def test_the_plain_api_is_imported_on_first_use_then_bound_in_the_package():
    code = ("import sys, wiredprof; before = 'pipeline' in vars(wiredprof);"
            "p = wiredprof.pipeline; from wiredprof.adapters import plain;"
            "print(before, vars(wiredprof).get('pipeline') is plain.pipeline is p, 'stage' in vars(wiredprof))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.split() == ["False", "True", "False"], out.stdout
