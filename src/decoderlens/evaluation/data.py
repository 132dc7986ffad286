"""Reading evaluation data: JSONL/CSV/TSV files, saved or Hub ``datasets``, and folders of audio files."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from decoderlens.errors import InputError
from decoderlens.inputs import AUDIO_SUFFIXES

INPUT_FIELDS = ("input", "source", "question", "formula", "text", "audio", "file_name", "path", "image")
TARGET_FIELDS = ("target", "reference", "answer", "translation", "transcription", "sentence", "label")


@dataclass
class EvalRow:
    """One example: a stable id, the model input (text, path or audio array) and the reference text."""

    id: str
    input: Any
    reference: str


@dataclass
class DataSource:
    """Where the data comes from and which fields hold input and reference."""

    path: str
    input_field: str | None = None
    target_field: str | None = None
    id_field: str | None = None
    config: str | None = None
    split: str | None = None
    template: str | None = None
    """Optional prompt template with an ``{input}`` placeholder, applied to text inputs."""
    limit: int | None = None


@dataclass
class LoadedData:
    """Rows that could be used, and the problems with the ones that could not."""

    rows: list[EvalRow]
    problems: list[str] = field(default_factory=list)


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


def _pick(record: dict[str, Any], explicit: str | None, candidates: tuple[str, ...], what: str) -> str:
    if explicit:
        return explicit
    for name in candidates:
        if name in record:
            return name
    raise InputError(f"cannot tell which field holds the {what} (fields: {', '.join(record)}): "
                     f"pass --{'input' if what == 'input' else 'target'}-field")


def _records(source: DataSource) -> Iterator[tuple[str, dict[str, Any] | None, str]]:
    """(location, record or None if unparseable, error) for every row of the source."""
    path = Path(source.path)
    if path.is_dir():
        yield from _folder_records(source, path)
        return
    if path.suffix.lower() == ".jsonl" or path.suffix.lower() == ".json":
        with path.open(encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as err:
                    yield f"line {number}", None, f"not valid JSON ({err.msg})"
                    continue
                yield f"line {number}", record if isinstance(record, dict) else None, "not a JSON object"
        return
    if path.suffix.lower() in (".csv", ".tsv"):
        with path.open(encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f, delimiter="\t" if path.suffix.lower() == ".tsv" else ",")
            for number, record in enumerate(reader, 2):
                yield f"line {number}", dict(record), ""
        return
    if path.exists():
        raise InputError(f"unsupported data file {path}: use .jsonl, .csv, .tsv, a datasets folder or an audio folder")
    yield from _hub_records(source)


def _folder_records(source: DataSource, path: Path) -> Iterator[tuple[str, dict[str, Any] | None, str]]:
    if (path / "dataset_info.json").exists() or (path / "dataset_dict.json").exists() or (
            path / "state.json").exists():
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
            inner = DataSource(str(manifest))
            for where, record, error in _records(inner):
                if record is not None:
                    key = "file_name" if "file_name" in record else source.input_field or "file_name"
                    if key in record:
                        record[key] = str(path / str(record[key]))
                yield f"{name} {where}", record, error
            return
    audio = sorted(p for p in path.iterdir() if p.suffix.lower() in AUDIO_SUFFIXES)
    if not audio:
        raise InputError(f"folder {path} has no metadata.jsonl/metadata.csv and no audio files")
    for file in audio:
        transcript = file.with_suffix(".txt")
        text = transcript.read_text(encoding="utf-8").strip() if transcript.exists() else ""
        record = {"id": file.stem, "audio": str(file), "transcription": text}
        yield file.name, record, ""


def _hub_records(source: DataSource) -> Iterator[tuple[str, dict[str, Any] | None, str]]:
    import datasets

    try:
        loaded = datasets.load_dataset(source.path, source.config, split=source.split or "test")
    except Exception as err:  # the Hub client raises many kinds; all mean "cannot get this data set"
        raise InputError(f"cannot load data set {source.path!r} (config {source.config}, split {source.split}): "
                         f"{err}") from None
    for index, record in enumerate(loaded):
        yield f"row {index}", dict(record), ""


def load_rows(source: DataSource) -> LoadedData:
    """Read every row; malformed ones are listed in ``problems`` with their location, never dropped silently."""
    rows: list[EvalRow] = []
    problems: list[str] = []
    input_field, target_field = source.input_field, source.target_field
    for index, (where, record, error) in enumerate(_records(source)):
        if source.limit is not None and len(rows) >= source.limit:
            break
        if record is None:
            problems.append(f"{where}: {error}")
            continue
        input_field = input_field or _pick(record, None, INPUT_FIELDS, "input")
        target_field = target_field or _pick(record, None, TARGET_FIELDS, "target")
        try:
            value, reference = _get(record, input_field), _get(record, target_field)
        except KeyError as err:
            problems.append(f"{where}: missing field {err.args[0]!r}")
            continue
        if isinstance(value, dict) and "array" in value:  # a datasets Audio column
            value = (value["array"], int(value["sampling_rate"]))
        if isinstance(reference, list):
            reference = reference[0] if reference else ""
        if isinstance(value, str) and not value.strip():
            problems.append(f"{where}: empty input")
            continue
        if reference is None or not str(reference).strip():
            problems.append(f"{where}: empty reference")
            continue
        if isinstance(value, str) and source.template:
            value = source.template.format(input=value)
        row_id = str(record.get(source.id_field or "id", index)) if isinstance(record, dict) else str(index)
        rows.append(EvalRow(row_id, value, str(reference)))
    return LoadedData(rows, problems)
