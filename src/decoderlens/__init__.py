"""DecoderLens: read out every encoder layer of an encoder-decoder Transformer through its own decoder."""

from decoderlens.architectures import ARCHITECTURES, REFUSED, supported_model_types
from decoderlens.engine import DecoderLens
from decoderlens.errors import DecoderLensError, InputError, LayerSelectionError, UnsupportedModelError
from decoderlens.layers import select_layers
from decoderlens.results import (
    ExampleReadouts,
    ExampleScores,
    LayerReadout,
    LayerScore,
    LensOutput,
    ScoreOutput,
    TokenScore,
)

__version__ = "0.1.0"

__all__ = [
    "ARCHITECTURES",
    "REFUSED",
    "DecoderLens",
    "DecoderLensError",
    "ExampleReadouts",
    "ExampleScores",
    "InputError",
    "LayerReadout",
    "LayerScore",
    "LayerSelectionError",
    "LensOutput",
    "ScoreOutput",
    "TokenScore",
    "UnsupportedModelError",
    "__version__",
    "select_layers",
    "supported_model_types",
]
