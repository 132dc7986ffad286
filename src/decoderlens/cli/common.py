"""What the commands share: one option per setting (defined once, from the settings dataclasses), error handling,
and output."""

from __future__ import annotations

import functools
import inspect
import signal
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import fields, replace
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Protocol, TypeVar

import typer
from rich.console import Console

from decoderlens.errors import DecoderLensError
from decoderlens.settings import LoadSettings, help_text, option_name

err_console = Console(stderr=True, soft_wrap=True)


class _Checked(Protocol):
    def validate(self) -> Any: ...


S = TypeVar("S", bound=_Checked)
F = TypeVar("F", bound=Callable[..., Any])
_SIMPLE_TYPES: dict[str, type] = {"int": int, "float": float, "str": str, "bool": bool}


class FormatChoice(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


ModelArg = Annotated[str, typer.Argument(help="Hub model name or local folder (save_pretrained layout).",
                                         show_default=False)]
FormatOpt = Annotated[FormatChoice, typer.Option("--format", help="table, json or csv.")]
OutputOpt = Annotated[Path | None, typer.Option("--output", "-o", help="Write the result to this file.",
                                                show_default=False)]
ForceOpt = Annotated[bool, typer.Option("--force", help="Use translators trained for another model (same shape) "
                                        "anyway, with a warning.")]
HtmlOpt = Annotated[Path | None, typer.Option("--html", help="Also write an HTML view to this file.",
                                              show_default=False)]


def _cli_type(item: Any) -> type:
    """The command-line type of a settings field: given in its metadata, else read off its annotation."""
    given = item.metadata.get("cli_type")
    if given is not None:
        return given  # type: ignore[no-any-return]
    names = [part.strip() for part in str(item.type).split("|") if part.strip() != "None"]
    return _SIMPLE_TYPES.get(names[0], str) if names else str


def settings_options(*classes: type, skip: tuple[str, ...] = ()) -> Callable[[F], F]:
    """Give a command one option per field of each settings class (name, type and help from the field, so each
    is defined once), and pass the values the user gave to it as ``given`` (options left out are absent)."""

    def wrap(command: F) -> F:
        signature = inspect.signature(command, eval_str=True)
        added: list[inspect.Parameter] = []
        for cls in classes:
            for item in fields(cls):
                if item.name in skip or not item.metadata:
                    continue  # sections (nested settings) and required fields are no options
                kind = _cli_type(item)
                flag = item.metadata.get("flag") or option_name(item.name)
                decls = [f"{flag}/--no-{flag[2:]}"] if kind is bool else [flag]
                metavar = item.metadata.get("metavar") or {int: "N", float: "X", str: "TEXT"}.get(kind)
                option = typer.Option(*decls, help=help_text(item), metavar=None if kind is bool else metavar,
                                      show_default=False)
                annotation = list[str] if kind is list else kind  # a list: the flag repeated
                added.append(inspect.Parameter(item.name, inspect.Parameter.KEYWORD_ONLY, default=None,
                                               annotation=Annotated[annotation | None, option]))  # type: ignore[valid-type]
        names = [p.name for p in added]

        @functools.wraps(command)
        def run(**kwargs: Any) -> Any:
            given = {name: kwargs.pop(name) for name in names if kwargs.get(name) not in (None, [])}
            for name in names:
                kwargs.pop(name, None)
            return command(**kwargs, given=given)

        kept = [p for p in signature.parameters.values() if p.name != "given"]
        run.__signature__ = signature.replace(parameters=[*kept, *added])  # type: ignore[attr-defined]
        return run  # type: ignore[return-value]

    return wrap


def settings_of(cls: type[S], given: dict[str, Any]) -> S:
    """Default settings of ``cls`` with the given options that belong to it applied, checked."""
    names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    return replace(cls(), **{k: v for k, v in given.items() if k in names}).validate()  # type: ignore[type-var]


@contextmanager
def friendly_errors() -> Iterator[None]:
    """Turn expected failures into a one-line message and exit code 2 instead of a traceback, and warnings into
    one line each; SIGTERM stops like Ctrl-C."""
    previous = signal.signal(signal.SIGTERM, _interrupt) if _main_thread() else None
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            yield
    except DecoderLensError as err:
        err_console.print(f"[bold red]error:[/bold red] {err}", markup=True, highlight=False)
        raise typer.Exit(2) from None
    except OSError as err:
        err_console.print(f"[bold red]error:[/bold red] {err}", highlight=False)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted[/yellow]")
        raise typer.Exit(130) from None
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _show_warning(message: Warning | str, category: type[Warning], *args: Any, **kwargs: Any) -> None:
    err_console.print(f"[bold yellow]warning:[/bold yellow] {message}", highlight=False)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def emit(text: str | None, output: Path | None) -> None:
    """Write ``text`` to ``output`` (or stdout)."""
    if text is None:
        return
    if output is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    else:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
        err_console.print(f"wrote {output}", highlight=False)


def show_result(result: Any, fmt: FormatChoice, output: Path | None) -> None:
    """Print a result as a table, JSON or CSV, or write it to ``output`` (as JSON when a table was asked for)."""
    from decoderlens.presentation.render import render

    emit(render(result, "json" if fmt is FormatChoice.table and output is not None else fmt.value), output)


def quiet_transformers() -> None:
    """No progress bars or advice from transformers in command output."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def load_lens(model: str, load: LoadSettings, force: bool = False) -> Any:
    """Load a ``DecoderLens`` (imported here so that ``--help`` stays fast), its default lens tuned where
    translators are given."""
    from decoderlens.engine import DecoderLens

    quiet_transformers()
    return DecoderLens.from_pretrained(model, device=load.device, dtype=load.dtype, device_map=load.device_map,
                                       translators=load.translators, force=force)
