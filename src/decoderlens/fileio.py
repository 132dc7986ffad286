"""Writing files safely: whole files atomically, JSON lines appended durably and read back despite torn ends."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


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


def json_line(record: dict[str, Any]) -> str:
    """One JSON record as a line of UTF-8 text."""
    return json.dumps(record, ensure_ascii=False) + "\n"


def append_lines(path: Path, lines: list[str]) -> None:
    """Append lines and make them durable (flushed and synced) before returning."""
    with path.open("a", encoding="utf-8") as f:
        f.write("".join(lines))
        f.flush()
        os.fsync(f.fileno())


def read_complete_lines(path: Path) -> tuple[list[str], bool]:
    """The complete lines of a file that may end in a torn write, and whether a torn end was cut off."""
    if not path.exists():
        return [], False
    raw = path.read_bytes()
    complete = raw[: raw.rfind(b"\n") + 1]
    lines = complete.decode("utf-8").split("\n")  # not splitlines(): JSON text may hold U+2028 and other breaks
    return [line for line in lines if line.strip()], len(complete) != len(raw)
