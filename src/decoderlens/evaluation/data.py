"""Reading evaluation data: JSONL/CSV/TSV files, saved or Hub ``datasets``, and folders of audio files.

A malformed row (bad JSON or UTF-8, a missing field, an empty input) is reported with its location and
skipped; it never stops the other rows from being read.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import re
import string
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from decoderlens.errors import InputError
from decoderlens.formats import AUDIO_SUFFIXES
from decoderlens.settings import described

INPUT_FIELDS = ("input", "source", "question", "formula", "text", "audio", "file_name", "path", "image")
TARGET_FIELDS = ("target", "reference", "answer", "translation", "transcription", "sentence", "label")
TRANSCRIPT_FIELDS = ("text", "transcript", "normalized_text", "raw_transcription")
"""Further names of the reference in an audio folder's manifest, whose input is the audio file."""
LANGUAGE_FIELDS = ("language", "lang", "locale")
"""Fields that name an example's language (the spoken one, for speech), guessed where ``--language-field`` is not
given."""
AUDIO_INPUT = "file_name"
"""The input field of an audio folder's manifest (and of a bare folder of audio files)."""
_NOT_UTF8 = re.compile("[\udc80-\udcff]")


@dataclass
class EvalRow:
    """One example: a stable id, the model input (text, path or audio array) and the reference text."""

    id: str
    input: Any
    reference: str
    language: str | None = None
    """The example's language where the data names it (``--language-field``, or a ``language`` field)."""


@dataclass
class DataSource:
    """Where the data comes from and which fields hold input and reference."""

    path: str
    """JSONL/CSV/TSV file, saved ``datasets`` folder, audio folder, or Hub data set name."""
    input_field: str | None = field(default=None, metadata=described(
        "Field holding the input (dotted paths reach into nested fields; default: guessed)."))
    target_field: str | None = field(default=None, metadata=described(
        "Field holding the reference (default: guessed)."))
    language_field: str | None = field(default=None, metadata=described(
        "Field naming each example's language (default: a language, lang or locale field where there is one); "
        "multilingual speech models are then scored on the language each layer detects."))
    id_field: str | None = field(default=None, metadata=described(
        "Field holding the example id (default: id, else the row number)."))
    config: str | None = field(default=None, metadata=described("Hub data set configuration."))
    split: str | None = field(default=None, metadata=described("Data set split (default: test, or the only one)."))
    template: str | None = field(default=None, metadata=described(
        "Prompt wrapped around text inputs, with an {input} placeholder."))
    limit: int | None = field(default=None, metadata=described("Use only the first N usable rows.", metavar="N"))

    def validate(self) -> DataSource:
        """Refuse a template that cannot be filled and a limit below one, before any row is read."""
        if self.template is not None:
            check_template(self.template)
        if self.limit is not None and (isinstance(self.limit, bool) or not isinstance(self.limit, int)
                                       or self.limit < 1):
            raise InputError(f"limit (--limit) must be a whole number of at least 1, got {self.limit!r}")
        return self


def check_template(template: str) -> None:
    """A template must contain ``{input}`` and no other placeholder."""
    try:
        names = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as err:
        raise InputError(f"template {template!r} does not parse ({err}); write it like 'Q: {{input}} A:' and "
                         "double literal braces ({{ }})") from None
    others = sorted({name or "{}" for name in names} - {"input"})
    if others:
        raise InputError(f"template {template!r} has unknown placeholders {others}: the only one is {{input}}")
    if "input" not in names:
        raise InputError(f"template {template!r} has no {{input}} placeholder: write it like 'Q: {{input}} A:'")


@dataclass
class LoadedData:
    """Rows that could be used, and the problems with the ones that could not."""

    rows: list[EvalRow]
    problems: list[str] = field(default_factory=list)


Record = tuple[str, dict[str, Any] | None, str]
"""(location, record or ``None`` if unusable, the problem)."""


def _get(record: dict[str, Any], dotted: str) -> Any:
    value: Any = record
    for part in dotted.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            raise KeyError(dotted)
    return value


def _guess(record: dict[str, Any], candidates: tuple[str, ...], what: str, taken: str | None = None) -> str:
    for name in candidates:
        if name in record and name != taken:
            return name
    if taken == AUDIO_INPUT:  # an audio manifest: a transcript column, or its single text column, is the reference
        for name in TRANSCRIPT_FIELDS:
            if name in record:
                return name
        texts = [k for k, v in record.items()
                 if k not in (taken, "id", *LANGUAGE_FIELDS) and isinstance(v, str)]
        if len(texts) == 1:
            return texts[0]
    option = "--input-field" if what == "input" else "--target-field"
    raise InputError(f"cannot tell which field holds the {what} (fields: {', '.join(map(str, record))}): "
                     f"pass {option}")


def _json_lines(path: Path) -> Iterator[Record]:
    with path.open("rb") as f:
        for number, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                yield f"line {number}", None, "not valid UTF-8"
                continue
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                yield f"line {number}", None, f"not valid JSON ({err.msg})"
                continue
            yield f"line {number}", record if isinstance(record, dict) else None, "not a JSON object"


def _delimited(path: Path) -> Iterator[Record]:
    text = path.read_bytes().decode("utf-8", errors="surrogateescape")
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter="\t" if path.suffix.lower() == ".tsv" else ",")
    for number, record in enumerate(reader, 2):
        values = list(record.values())
        if None in record:  # type: ignore[comparison-overlap]  # csv puts surplus fields under the key None
            yield f"line {number}", None, "has more fields than the header"
        elif None in values:
            yield f"line {number}", None, "has fewer fields than the header"
        elif any(isinstance(v, str) and _NOT_UTF8.search(v) for v in values):
            yield f"line {number}", None, "not valid UTF-8"
        else:
            yield f"line {number}", dict(record), ""


def _records(source: DataSource) -> Iterator[Record]:
    """Every row of the source."""
    path = Path(source.path)
    if path.is_dir():
        yield from _folder_records(source, path)
    elif path.suffix.lower() in (".jsonl", ".json"):
        yield from _json_lines(path)
    elif path.suffix.lower() in (".csv", ".tsv"):
        yield from _delimited(path)
    elif path.exists():
        raise InputError(f"unsupported data file {path}: use .jsonl, .csv, .tsv, a datasets folder or an audio folder")
    elif path.suffix.lower() in (".jsonl", ".json", ".csv", ".tsv") or source.path.startswith((".", "/", "~")):
        raise InputError(f"no such data file: {path}")
    else:
        yield from _hub_records(source)


def is_audio_folder(path: Path) -> bool:
    """A folder of audio files, with or without a ``metadata.jsonl``/``metadata.csv`` manifest."""
    if not path.is_dir() or _is_datasets_folder(path):
        return False
    return any((path / name).exists() for name in ("metadata.jsonl", "metadata.csv")) or any(
        p.suffix.lower() in AUDIO_SUFFIXES for p in path.iterdir())


def _is_datasets_folder(path: Path) -> bool:
    return any((path / name).exists() for name in ("dataset_info.json", "dataset_dict.json", "state.json"))


def _folder_records(source: DataSource, path: Path) -> Iterator[Record]:
    if _is_datasets_folder(path):
        import datasets

        loaded = datasets.load_from_disk(str(path))
        if isinstance(loaded, datasets.DatasetDict):
            split = source.split or ("test" if "test" in loaded else next(iter(loaded)))
            loaded = loaded[split]
        for index, record in enumerate(loaded):
            yield f"row {index}", dict(record), ""
        return
    for name in ("metadata.jsonl", "metadata.csv"):
        manifest = path / name
        if manifest.exists():
            key = source.input_field or AUDIO_INPUT
            for where, record, error in _records(DataSource(str(manifest))):
                if record is not None and key in record:
                    record[key] = str(path / str(record[key]))
                yield f"{name} {where}", record, error
            return
    audio = sorted(p for p in path.iterdir() if p.suffix.lower() in AUDIO_SUFFIXES)
    if not audio:
        raise InputError(f"folder {path} has no metadata.jsonl/metadata.csv, no audio files and is no saved "
                         "datasets folder")
    for file in audio:
        transcript = file.with_suffix(".txt")
        text = transcript.read_text(encoding="utf-8", errors="replace").strip() if transcript.exists() else ""
        yield file.name, {"id": file.stem, AUDIO_INPUT: str(file), "transcription": text}, ""


def _hub_records(source: DataSource) -> Iterator[Record]:
    import datasets

    try:
        loaded = datasets.load_dataset(source.path, source.config, split=source.split or "test")
    except Exception as err:  # the Hub client raises many kinds; all mean "cannot get this data set"
        raise InputError(f"cannot load data set {source.path!r} (config {source.config}, split {source.split}): "
                         f"{str(err).splitlines()[0] if str(err) else type(err).__name__}") from None
    for index, record in enumerate(loaded):
        yield f"row {index}", dict(record), ""


def load_rows(source: DataSource, references: bool = True) -> LoadedData:
    """Read every row; malformed ones are listed in ``problems`` with their location, never dropped silently.
    ``references=False``: rows without a reference are kept (with an empty one)."""
    rows: list[EvalRow] = []
    problems: list[str] = []
    audio_folder = is_audio_folder(Path(source.path))
    input_field = source.input_field or (AUDIO_INPUT if audio_folder else None)
    target_field = source.target_field
    for index, (where, record, error) in enumerate(_records(source)):
        if source.limit is not None and len(rows) >= source.limit:
            break
        if record is None:
            problems.append(f"{where}: {error}")
            continue
        input_field = input_field or _guess(record, INPUT_FIELDS, "input")
        if target_field is None and references:
            target_field = _guess(record, TARGET_FIELDS, "target", taken=input_field)
        elif target_field is None:
            with contextlib.suppress(InputError):
                target_field = _guess(record, TARGET_FIELDS, "target", taken=input_field)
        try:
            value = _get(record, input_field)
            reference = _get(record, target_field) if target_field else ""
        except KeyError as err:
            if references or err.args[0] == input_field:
                problems.append(f"{where}: missing field {err.args[0]!r}")
                continue
            reference = ""
        if isinstance(value, dict) and "array" in value:  # a datasets Audio column
            value = (value["array"], int(value["sampling_rate"]))
        if isinstance(reference, list):
            reference = reference[0] if reference else ""
        if value is None or (isinstance(value, str) and not value.strip()):
            problems.append(f"{where}: empty input")
            continue
        if references and (reference is None or not str(reference).strip()):
            problems.append(f"{where}: empty reference")
            continue
        if isinstance(value, str) and source.template and not audio_folder:
            value = source.template.format(input=value)
        if source.language_field and source.language_field not in record:
            problems.append(f"{where}: missing field {source.language_field!r} (--language-field)")
            continue
        row_id = str(record.get(source.id_field or "id", index))
        language = record.get(source.language_field or next((f for f in LANGUAGE_FIELDS if f in record), ""))
        rows.append(EvalRow(row_id, value, str(reference), str(language) if language else None))
    return LoadedData(rows, problems)
