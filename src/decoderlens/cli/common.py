"""Options and error handling shared by the commands."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path

import typer
from rich.console import Console

from decoderlens.errors import DecoderLensError

err_console = Console(stderr=True, soft_wrap=True)


class FinalNormChoice(StrEnum):
    auto = "auto"
    none = "none"


class FormatChoice(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


@contextmanager
def friendly_errors() -> Iterator[None]:
    """Turn expected failures into a one-line message and exit code 2 instead of a traceback."""
    try:
        yield
    except DecoderLensError as err:
        err_console.print(f"[bold red]error:[/bold red] {err}")
        raise typer.Exit(2) from None
    except OSError as err:
        err_console.print(f"[bold red]error:[/bold red] {err}")
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted[/yellow]")
        raise typer.Exit(130) from None


def emit(text: str | None, output: Path | None) -> None:
    """Write ``text`` to ``output`` (or stdout)."""
    if text is None:
        return
    if output is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    else:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8")
        err_console.print(f"wrote {output}")


