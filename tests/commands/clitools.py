"""Running the CLI in-process and checking a bad-input refusal (one line, exit 2)."""
from __future__ import annotations

from click.testing import CliRunner, Result

from wiredprof.cli import cli


def wp(*args: object) -> Result:
    """`wiredprof ARGS...` in this process."""
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def one_line_error(result: Result, *needles: str) -> str:
    """Assert exit 2 with one line on stderr, no traceback, containing every needle."""
    assert result.exit_code == 2, (result.stdout, result.stderr)
    err = result.stderr.strip()
    assert "\n" not in err and "Traceback" not in err, err
    for n in needles:
        assert n in err, err
    return err
