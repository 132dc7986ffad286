"""Recipe files (YAML) that fix a whole evaluation: model, data, fields, task, generation settings."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml

from decoderlens.errors import InputError
from decoderlens.evaluation.data import DataSource
from decoderlens.evaluation.runner import EvalSettings

TOP_LEVEL = {"model", "task", "data", "metrics", "normalize", "layers", "max_new_tokens", "num_beams", "final_norm",
             "tgt_lang", "language", "speech_task", "score", "batch_size", "on_error", "top_length_cap"}
DATA_KEYS = {"path", "config", "split", "input_field", "target_field", "id_field", "template", "limit"}


def recipe_dir() -> Path:
    """Folder of the recipes that ship with the package."""
    return Path(str(files("decoderlens") / "recipes"))


def list_recipes() -> list[str]:
    """Names of the shipped recipes."""
    return sorted(p.stem for p in recipe_dir().glob("*.yaml"))


def resolve_recipe_path(name_or_path: str) -> Path:
    """A recipe file path, or the shipped recipe of that name."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    shipped = recipe_dir() / f"{name_or_path.removesuffix('.yaml')}.yaml"
    if shipped.is_file():
        return shipped
    raise InputError(f"no recipe {name_or_path!r}: give a YAML file or one of {', '.join(list_recipes())}")


def load_recipe(name_or_path: str, overrides: dict[str, Any] | None = None) -> EvalSettings:
    """Read a recipe into ``EvalSettings``; ``overrides`` (non-None values) win over the file."""
    path = resolve_recipe_path(name_or_path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise InputError(f"recipe {path} is not valid YAML: {err}") from None
    unknown = set(raw) - TOP_LEVEL
    if unknown:
        raise InputError(f"recipe {path}: unknown keys {sorted(unknown)}; allowed: {sorted(TOP_LEVEL)}")
    data = dict(raw.pop("data", {}) or {})
    bad = set(data) - DATA_KEYS
    if bad or "path" not in data:
        raise InputError(f"recipe {path}: 'data' needs 'path' and may have {sorted(DATA_KEYS)} (got {sorted(data)})")
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        if key in DATA_KEYS:
            data[key] = value
        else:
            raw[key] = value
    if "model" not in raw:
        raise InputError(f"recipe {path} names no model")
    speech_task = raw.pop("speech_task", None)
    settings = EvalSettings(data=DataSource(**data), task_token=speech_task, **raw)
    settings.metric_objects()  # unknown task or metric names fail here
    return settings
