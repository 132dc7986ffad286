"""The propositional-logic experiment: data, model, training, analysis and the shipped default model."""

from __future__ import annotations

from pathlib import Path

from decoderlens.shipped import SHIPPED


def shipped_model_path() -> Path:
    """Folder of the logic model that ships inside the package (``save_pretrained`` layout; short name ``logic``)."""
    return SHIPPED["logic"].path
