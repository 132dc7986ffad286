"""DecoderLens: read out every encoder layer of an encoder-decoder Transformer through its own decoder.

Names are loaded on first use, so that ``import decoderlens`` (and the command line's ``--help``) does not load
torch. This package is the composition root: loading a public name also loads the presentation layer's
notebook and terminal displays of results.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from decoderlens.version import __version__

if TYPE_CHECKING:
    from decoderlens.architectures import ARCHITECTURES, REFUSED, supported_model_types
    from decoderlens.attribution.output import AttributionOutput
    from decoderlens.engine import DecoderLens
    from decoderlens.errors import DecoderLensError, InputError, LayerSelectionError, UnsupportedModelError
    from decoderlens.layers import select_layers
    from decoderlens.results import (
        ExampleReadouts,
        ExampleScores,
        GridOutput,
        LanguageOutput,
        LayerReadout,
        LayerScore,
        LensOutput,
        ScoreOutput,
        TokenScore,
        TraceOutput,
    )
    from decoderlens.settings import AttributionSettings, GenerationSettings, RuntimeSettings

_EXPORTS: dict[str, str] = {
    "ARCHITECTURES": "architectures", "REFUSED": "architectures", "supported_model_types": "architectures",
    "DecoderLens": "engine", "AttributionOutput": "attribution.output", "AttributionSettings": "settings",
    "DecoderLensError": "errors", "InputError": "errors", "LayerSelectionError": "errors",
    "UnsupportedModelError": "errors",
    "select_layers": "layers",
    "ExampleReadouts": "results", "ExampleScores": "results", "LayerReadout": "results", "LayerScore": "results",
    "LensOutput": "results", "ScoreOutput": "results", "TokenScore": "results", "GridOutput": "results",
    "LanguageOutput": "results", "TraceOutput": "results",
    "GenerationSettings": "settings", "RuntimeSettings": "settings",
}

__all__ = [
    "ARCHITECTURES", "REFUSED", "AttributionOutput", "AttributionSettings",
    "DecoderLens", "DecoderLensError", "ExampleReadouts", "ExampleScores",
    "GenerationSettings", "GridOutput", "InputError", "LanguageOutput", "LayerReadout", "LayerScore",
    "LayerSelectionError", "LensOutput", "RuntimeSettings", "ScoreOutput", "TokenScore", "TraceOutput",
    "UnsupportedModelError", "__version__", "select_layers", "supported_model_types",
]


def __getattr__(name: str) -> Any:
    """Load a public name on first use (PEP 562)."""
    if name not in _EXPORTS:
        raise AttributeError(f"module 'decoderlens' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"decoderlens.{_EXPORTS[name]}"), name)
    globals()[name] = value
    importlib.import_module("decoderlens.presentation.display")  # registers how results draw themselves
    return value


def __dir__() -> list[str]:
    return __all__
