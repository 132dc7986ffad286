"""The file formats and writing them safely: one JSON and one CSV writer, whole files written atomically, JSON
lines appended durably and read back despite torn ends."""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from decoderlens.errors import InputError


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write a whole file atomically (a reader never sees a half-written file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


FIGURE_FORMATS = ("png", "svg", "pdf")


def check_output(path: Path | None, suffixes: tuple[str, ...], option: str) -> None:
    """Refuse, before any work, an output file whose kind (suffix) cannot be written or whose folder cannot be
    made, so that a late failure never loses a finished result."""
    if path is None:
        return
    suffix = path.suffix.lower().lstrip(".")
    if suffix not in suffixes:
        raise InputError(f"{option} {path}: write a {', '.join('.' + s for s in suffixes)} file")
    if path.is_dir():
        raise InputError(f"{option} {path} is a folder: give a file name")
    folder = path.parent
    while not folder.exists():
        folder = folder.parent
    if not os.access(folder, os.W_OK):
        raise InputError(f"{option} {path}: cannot write in {folder}")


def json_line(record: dict[str, Any]) -> str:
    """One JSON record as a line of UTF-8 text."""
    return json.dumps(record, ensure_ascii=False) + "\n"


def append_lines(path: Path, lines: list[str]) -> None:
    """Append lines and make them durable (flushed and synced) before returning. A torn last line (a crash or a
    full disk mid-write) is cut off first, so that it never runs into the new lines."""
    cut_torn_end(path)
    with path.open("a", encoding="utf-8") as f:
        f.write("".join(lines))
        f.flush()
        os.fsync(f.fileno())


def cut_torn_end(path: Path) -> bool:
    """Cut a file back to its last complete line; whether there was a torn end to cut."""
    if not path.exists():
        return False
    with path.open("rb+") as f:
        size = f.seek(0, os.SEEK_END)
        if size == 0:
            return False
        f.seek(size - 1)
        if f.read(1) == b"\n":
            return False
        step = min(size, 1 << 16)
        end = size
        while end > 0:  # find the last newline, reading backwards in blocks
            start = max(0, end - step)
            f.seek(start)
            block = f.read(end - start)
            found = block.rfind(b"\n")
            if found >= 0:
                f.truncate(start + found + 1)
                return True
            end = start
        f.truncate(0)
        return True


def read_complete_lines(path: Path) -> tuple[list[str], bool]:
    """The complete lines of a file that may end in a torn write, and whether a torn end was cut off."""
    if not path.exists():
        return [], False
    raw = path.read_bytes()
    complete = raw[: raw.rfind(b"\n") + 1]
    lines = complete.decode("utf-8").split("\n")  # not splitlines(): JSON text may hold U+2028 and other breaks
    return [line for line in lines if line.strip()], len(complete) != len(raw)


def json_text(data: Any, indent: int = 2) -> str:
    """Indented JSON whose lists of plain values (token ids, tokens, numbers) stay on one line: what ``save()`` and
    every ``--format json`` write."""

    def dump(value: Any, depth: int) -> str:
        pad, inner = " " * (indent * depth), " " * (indent * (depth + 1))
        if isinstance(value, dict) and value:
            items = [f"{inner}{json.dumps(str(k), ensure_ascii=False)}: {dump(v, depth + 1)}" for k, v in value.items()]
            return "{\n" + ",\n".join(items) + "\n" + pad + "}"
        if isinstance(value, (list, tuple)) and value and any(isinstance(v, (dict, list, tuple)) for v in value):
            return "[\n" + ",\n".join(inner + dump(v, depth + 1) for v in value) + "\n" + pad + "]"
        return json.dumps(value, ensure_ascii=False)

    return dump(data, 0)


def csv_text(records: list[dict[str, Any]]) -> str:
    """Records as CSV text with a header from the first record's keys (lists are joined with spaces)."""
    if not records:
        return ""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(records[0]), lineterminator="\n")
    writer.writeheader()
    for record in records:
        writer.writerow({k: " ".join(map(str, v)) if isinstance(v, list) else v for k, v in record.items()})
    return buffer.getvalue()


def read_json(path: Path, fix: str) -> Any:
    """A whole JSON file; an unreadable or damaged one is refused naming the file and ``fix`` (what to do)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise InputError(f"{path} cannot be read ({type(err).__name__}: {err}): {fix}") from None


def read_json_lines(path: Path, fix: str) -> tuple[list[Any], bool]:
    """The complete JSON lines of a file that may end in a torn write, and whether it did; a damaged line is
    refused with its place."""
    try:
        lines, torn = read_complete_lines(path)
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"{path} cannot be read ({type(err).__name__}): {fix}") from None
    records = []
    for number, line in enumerate(lines, 1):
        try:
            records.append(json.loads(line))
        except ValueError as err:
            raise InputError(f"{path}:{number} is not a JSON record ({err.args[0]}): {fix}") from None
    return records, torn
