"""The command line as tests drive it: invoke a command, and check that a bad input ends in one clear line."""

from __future__ import annotations

from typer.testing import CliRunner

from decoderlens.cli.app import app


def run(*args: str) -> tuple[int, str, str]:
    """Exit code, standard output and standard error of ``decoderlens ARGS``."""
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def one_line_error(code: int, err: str, message: str) -> None:
    """Exit code 2, no traceback, ``message`` said, and exactly one ``error:`` line."""
    assert code == 2, err
    assert "Traceback" not in err and message in err, err
    assert len([line for line in err.splitlines() if line.startswith("error:")]) == 1, err
