"""The propositional-logic experiment: data, model, training, analysis and the shipped default model."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def shipped_model_path() -> Path:
    """Folder of the logic model that ships inside the package (``save_pretrained`` layout)."""
    return Path(str(files("decoderlens") / "assets" / "logic-model"))
