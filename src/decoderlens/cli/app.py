"""The ``decoderlens`` command: a thin typer app over the library."""

from __future__ import annotations

import typer

from decoderlens.cli.eval import eval_command
from decoderlens.cli.logic import demo, logic_app
from decoderlens.cli.report import plot, report
from decoderlens.cli.run import run
from decoderlens.cli.score import score

app = typer.Typer(
    name="decoderlens",
    help="Read out every encoder layer of an encoder-decoder Transformer through its own decoder.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.command("run")(run)
app.command("score")(score)
app.command("eval")(eval_command)
app.command("report")(report)
app.command("plot")(plot)
app.command("demo")(demo)
app.add_typer(logic_app, name="logic")


def main() -> None:
    """Console-script entry point."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    app()
