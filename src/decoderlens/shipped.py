"""Models that ship inside the package, by short name: every command and ``DecoderLens.from_pretrained`` accept
the name from any folder (a local folder of the same name comes first)."""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path


@dataclass(frozen=True)
class ShippedModel:
    """A model folder inside the package."""

    name: str
    folder: str
    """Its folder under ``decoderlens/assets``."""
    description: str

    @property
    def path(self) -> Path:
        return Path(str(files("decoderlens") / "assets" / self.folder))


SHIPPED = {model.name: model for model in [
    ShippedModel("logic", "logic-model", "propositional logic, formulas to satisfying assignments (T5, 6+6 layers of "
                 "width 64, trained from scratch; the embedded default of demo and the docs)"),
]}
ALIASES = {"decoderlens/logic-model": "logic"}
"""Other names of shipped models (the name results carry)."""


def resolve_model_name(name_or_path: str) -> str:
    """The folder of a shipped model named ``name_or_path`` (unless a local folder has that name), else the name
    unchanged."""
    name = ALIASES.get(name_or_path, name_or_path)
    if name in SHIPPED and not Path(name_or_path).exists():
        return str(SHIPPED[name].path)
    return name_or_path
