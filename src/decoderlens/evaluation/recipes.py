"""Recipe files (YAML) that fix a whole evaluation: model, data, fields, preset, generation settings.

A recipe uses the same names as the command line and ``run.json`` (flat keys, the data source under
``data:``), and goes through the same override path as the command line's options.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml

from decoderlens.errors import InputError
from decoderlens.evaluation.data import DataSource
from decoderlens.evaluation.settings import EvalSettings, setting_names, settings_from


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


def read_recipe(name_or_path: str) -> dict[str, Any]:
    """A recipe's settings as flat options (the ``data:`` mapping merged in)."""
    path = resolve_recipe_path(name_or_path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise InputError(f"recipe {path} is not valid YAML: {err}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("data", {}), dict):
        raise InputError(f"recipe {path}: expected a mapping of settings with the data source under 'data:'")
    data = raw.pop("data", {}) or {}
    unknown = (set(raw) | set(data)) - set(setting_names()) - {"model"}
    if unknown:
        raise InputError(f"recipe {path}: unknown keys {sorted(unknown)}; allowed: {['model', *setting_names()]}")
    stray = set(data) - set(DataSource.__dataclass_fields__)
    if stray:
        raise InputError(f"recipe {path}: {sorted(stray)} do not belong under 'data:'")
    if "model" not in raw or "path" not in data:
        raise InputError(f"recipe {path} must name a model and data.path")
    return {**raw, **data}


def load_recipe(name_or_path: str, overrides: dict[str, Any] | None = None) -> EvalSettings:
    """Read a recipe into ``EvalSettings``; ``overrides`` (non-None values) win over the file."""
    options = read_recipe(name_or_path)
    options.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return settings_from(options).validate()
