"""Errors that tell the user what to do; raised instead of deep torch or transformers failures."""

from __future__ import annotations


class DecoderLensError(ValueError):
    """Base class: a problem with the user's model, inputs or options, with a fix in the message."""


class UnsupportedModelError(DecoderLensError):
    """The model is not an encoder-decoder that DecoderLens can read correctly."""


class LayerSelectionError(DecoderLensError):
    """A layer selection that does not parse or names layers the encoder does not have."""


class InputError(DecoderLensError):
    """An input (text, audio, image, target, option) that cannot be used as given."""
