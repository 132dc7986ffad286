"""The ``decoderlens`` command: a thin typer app over the library; commands load the engine only when they run."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import typer

from decoderlens.cli.attribute import attribute_command
from decoderlens.cli.compare import compare_command
from decoderlens.cli.eval import eval_command
from decoderlens.cli.grid import grid_command
from decoderlens.cli.logic import demo, logic_app
from decoderlens.cli.models import models_command
from decoderlens.cli.report import plot, report
from decoderlens.cli.run import run
from decoderlens.cli.score import score
from decoderlens.cli.serve import serve_command
from decoderlens.cli.trace import trace_command
from decoderlens.cli.tune import tune_command
from decoderlens.version import __version__

app = typer.Typer(
    name="decoderlens",
    help="Read out every encoder layer of an encoder-decoder Transformer through its own decoder.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"decoderlens {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """Read out every encoder layer of an encoder-decoder Transformer through its own decoder."""


COMMANDS: dict[str, Callable[..., None]] = {
    "run": run, "score": score, "eval": eval_command, "report": report, "plot": plot, "grid": grid_command,
    "trace": trace_command, "attribute": attribute_command,
    "tune": tune_command, "compare": compare_command, "serve": serve_command, "demo": demo,
    "models": models_command,
}
"""The commands, in the order ``--help`` lists them (``logic`` follows, with its own commands)."""
for command_name, command in COMMANDS.items():
    app.command(command_name)(command)
app.add_typer(logic_app, name="logic")


RENAMED: dict[str, dict[str, str]] = {
    "tune": {"--batch-size": "--step-batch"},
    "demo": {"--force": "--fresh"},
    "logic": {"--force": "--fresh"},
    "plot": {"--format": "--figure-format"},
    "compare": {"--resamples": "--bootstrap-resamples"},
}
"""Per command, options that were renamed, and their new names."""


def renamed_option(argv: list[str]) -> str | None:
    """A message naming the new spelling of a renamed option in ``argv`` (the command's words), if any."""
    if not argv:
        return None
    renamed = RENAMED.get(argv[0], {})
    for word in argv[1:]:
        flag = word.split("=", 1)[0]
        if flag in renamed:
            return f"{flag} was renamed: did you mean {renamed[flag]}?"
    return None


def main() -> None:
    """Console-script entry point."""
    import sys

    message = renamed_option(sys.argv[1:])
    if message is not None:
        typer.echo(f"error: {message}", err=True)
        raise SystemExit(2)
    app()
