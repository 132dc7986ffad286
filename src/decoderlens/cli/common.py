"""What the commands share: the options of every setting (defined once, help from the settings themselves),
error handling, and output."""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import fields, replace
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from decoderlens.errors import DecoderLensError, InputError
from decoderlens.settings import GenerationSettings, RuntimeSettings, help_text

err_console = Console(stderr=True, soft_wrap=True)
S = TypeVar("S", GenerationSettings, RuntimeSettings)


class FormatChoice(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


def _gen(name: str) -> str:
    return help_text(GenerationSettings, name)


def _run(name: str) -> str:
    return help_text(RuntimeSettings, name)


ModelArg = Annotated[str, typer.Argument(help="Hub model name or local folder (save_pretrained layout).",
                                         show_default=False)]
LayersOpt = Annotated[str | None, typer.Option("--layers", help=_gen("layers"), show_default=False)]
MaxNewTokensOpt = Annotated[int | None, typer.Option("--max-new-tokens", help=_gen("max_new_tokens"),
                                                     show_default=False)]
NumBeamsOpt = Annotated[int | None, typer.Option("--num-beams", help=_gen("num_beams"), show_default=False)]
FinalNormOpt = Annotated[str | None, typer.Option("--final-norm", metavar="auto|none", help=_gen("final_norm"),
                                                  show_default=False)]
TgtLangOpt = Annotated[str | None, typer.Option("--tgt-lang", help=_gen("tgt_lang"), show_default=False)]
LanguageOpt = Annotated[str | None, typer.Option("--language", help=_gen("language"), show_default=False)]
TaskOpt = Annotated[str | None, typer.Option("--task", metavar="transcribe|translate", help=_gen("task"),
                                             show_default=False)]
TopLengthCapOpt = Annotated[float | None, typer.Option("--top-length-cap", help=_gen("top_length_cap"),
                                                       show_default=False)]
TruncateOpt = Annotated[bool | None, typer.Option("--truncate/--no-truncate", help=_gen("truncation"),
                                                  show_default=False)]
BatchSizeOpt = Annotated[str | None, typer.Option("--batch-size", metavar="auto|N", help=_run("batch_size"),
                                                  show_default=False)]
MaxRowsOpt = Annotated[int | None, typer.Option("--max-rows", help=_run("max_rows"), show_default=False)]
MaxMemoryOpt = Annotated[str | None, typer.Option("--max-memory", help=_run("max_memory"), show_default=False)]
DeviceOpt = Annotated[str | None, typer.Option("--device", help=_run("device"), show_default=False)]
DtypeOpt = Annotated[str | None, typer.Option("--dtype", help=_run("dtype"), show_default=False)]
DeviceMapOpt = Annotated[str | None, typer.Option("--device-map", help=_run("device_map"), show_default=False)]
FormatOpt = Annotated[FormatChoice, typer.Option("--format", help="table, json or csv.")]
OutputOpt = Annotated[Path | None, typer.Option("--output", "-o", help="Write the result to this file.",
                                                show_default=False)]


def batch_size_value(text: str) -> int | str:
    """``--batch-size``: ``auto`` sizes batches by rows and memory; else a whole number."""
    if text.strip().lower() == "auto":
        return "auto"
    try:
        return int(text)
    except ValueError:
        raise InputError(f"batch_size (--batch-size) must be 'auto' or a whole number of at least 1, got {text!r}"
                         ) from None


def overrides(**options: Any) -> dict[str, Any]:
    """The options a user gave (``None`` = not given), in the settings' own terms."""
    given = {name: value for name, value in options.items() if value is not None}
    if "batch_size" in given:
        given["batch_size"] = batch_size_value(given["batch_size"])
    return given


def settings_of(cls: type[S], given: dict[str, Any]) -> S:
    """Default settings of ``cls`` with the given options that belong to it applied, checked."""
    names = {f.name for f in fields(cls)}
    return replace(cls(), **{k: v for k, v in given.items() if k in names}).validate()  # type: ignore[type-var]


@contextmanager
def friendly_errors() -> Iterator[None]:
    """Turn expected failures into a one-line message and exit code 2 instead of a traceback; SIGTERM stops like
    Ctrl-C."""
    previous = signal.signal(signal.SIGTERM, _interrupt) if _main_thread() else None
    try:
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


def quiet_transformers() -> None:
    """No progress bars or advice from transformers in command output."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def load_lens(model: str, runtime: RuntimeSettings) -> Any:
    """Load a ``DecoderLens`` (imported here so that ``--help`` stays fast)."""
    from decoderlens.engine import DecoderLens

    quiet_transformers()
    return DecoderLens.from_pretrained(model, device=runtime.device, dtype=runtime.dtype,
                                       device_map=runtime.device_map)
