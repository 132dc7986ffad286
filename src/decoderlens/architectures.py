"""Per-family facts about encoder-decoder models, as one table keyed by ``config.model_type``.

Everything that differs between families lives here: where the encoder's block list and final norm
are, what kind of input the encoder reads, and which generation quirks apply. Nothing else in the
package names a family. Final norms are listed explicitly because finding "the norm" by attribute name
picks input norms (``layernorm_embedding`` in BART, ``embeddings_layer_norm`` in ProphetNet) by mistake.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from decoderlens.errors import UnsupportedModelError

Modality = Literal["text", "speech", "vision"]
TargetLanguage = Literal["none", "optional", "required"]


@dataclass(frozen=True)
class EncoderLayout:
    """Where an encoder keeps its blocks and its final norm (paths relative to the encoder module)."""

    layers: str
    final_norm: str | None
    """``None`` for post-LN encoders, whose last block output is already the final output."""


@dataclass(frozen=True)
class DecoderLayout:
    """Where a decoder keeps its blocks and its final norm (paths relative to ``model.get_decoder()``), and its
    output head (relative to the model; ``None``: ``model.get_output_embeddings()``): what the logit lens inside
    the decoder (the 2-D lens) applies to intermediate decoder states."""

    layers: str
    final_norm: str | None
    """``None`` for post-LN decoders."""
    head: str | None = None
    output_scale: str | None = None
    """The config flag under which the model scales decoder outputs by ``d_model ** -0.5`` before its head
    (T5-style tied embeddings)."""


@dataclass(frozen=True)
class ArchitectureSpec:
    """How to read the encoder layers of one model family."""

    model_type: str
    modality: Modality
    layout: EncoderLayout | None
    """``None`` for composite models whose encoder is looked up in ``inner_encoders``."""
    inner_encoders: dict[str, EncoderLayout] = field(default_factory=dict)
    """Composite models: the encoder's own ``model_type`` -> its layout."""
    target_language: TargetLanguage = "none"
    """Whether generation needs a target-language token forced at the first step."""
    speech_prompt: bool = False
    """Whisper-style decoder prompt with language and task tokens."""
    encoder_mask: bool = True
    """Whether the decoder takes an encoder attention mask (vision encoders take none)."""
    padding_sensitive: bool = False
    """Whether padding changes the encoder's output (convolutional front ends): inputs are then
    encoded one at a time and only the encoder states are padded, under a mask."""
    round_decoding: bool = True
    """Whether greedy decoding may continue unfinished rows from their tokens so far (token-identical).
    Not for decoders that treat a multi-token prefix differently from step-by-step decoding (FSMT,
    ProphetNet's n-gram stream) or whose expert routing depends on how many tokens arrive at once (MoE)."""
    feature_padding: str = "longest"
    """How the feature extractor pads a batch of audio (Whisper needs its fixed 30 s window)."""
    decoder: DecoderLayout | None = None
    """The decoder's layout (``None`` for composite models, looked up in ``inner_decoders``)."""
    inner_decoders: dict[str, DecoderLayout] = field(default_factory=dict)
    """Composite models: the decoder's own ``model_type`` -> its layout."""
    decoder_refusal: str = ""
    """Why the 2-D lens cannot read this decoder (when it has no layout)."""
    time_major_blocks: bool = False
    """The encoder's blocks take hidden states as (length, batch, width) rather than (batch, length, width)."""
    speech_time_axis: int = -1
    """Speech models: the time axis of the main input tensor (features or waveform), where causal tracing
    corrupts a span of seconds."""


def _text(model_type: str, layers: str, final_norm: str | None, decoder: DecoderLayout | None = None,
          **kw: object) -> ArchitectureSpec:
    """A text model whose encoder and decoder share their layout (unless ``decoder`` says otherwise)."""
    return ArchitectureSpec(model_type, "text", EncoderLayout(layers, final_norm),
                            decoder=decoder or DecoderLayout(layers, final_norm), **kw)  # type: ignore[arg-type]


_BERT_LIKE = EncoderLayout("encoder.layer", None)
_VIT_LIKE = EncoderLayout("layers", "layernorm")
_BERT_DECODER = DecoderLayout("bert.encoder.layer", None, head="decoder.cls")
_GPT2_DECODER = DecoderLayout("transformer.h", "transformer.ln_f", head="decoder.lm_head")
_POST_LN_DECODER = DecoderLayout("layers", None)
_PRE_LN_DECODER = DecoderLayout("layers", "layer_norm")
_T5_DECODER = DecoderLayout("block", "final_layer_norm", output_scale="scale_decoder_outputs")

ARCHITECTURES: dict[str, ArchitectureSpec] = {
    spec.model_type: spec
    for spec in [
        _text("t5", "block", "final_layer_norm", _T5_DECODER),
        _text("mt5", "block", "final_layer_norm"),
        _text("umt5", "block", "final_layer_norm", _T5_DECODER),
        _text("longt5", "block", "final_layer_norm", _T5_DECODER),
        _text("switch_transformers", "block", "final_layer_norm",
              DecoderLayout("block", "final_layer_norm", output_scale="tie_word_embeddings"), round_decoding=False),
        _text("bart", "layers", None),
        _text("mbart", "layers", "layer_norm", target_language="optional"),
        _text("marian", "layers", None),
        _text("m2m_100", "layers", "layer_norm", target_language="required"),
        _text("nllb-moe", "layers", "layer_norm", target_language="required", round_decoding=False),
        _text("pegasus", "layers", "layer_norm"),
        _text("pegasus_x", "layers", "layer_norm"),
        _text("led", "layers", None),
        _text("blenderbot", "layers", "layer_norm"),
        _text("blenderbot-small", "layers", None),
        _text("plbart", "layers", None),
        _text("mvp", "layers", None),
        _text("bigbird_pegasus", "layers", "layernorm_embedding"),
        _text("fsmt", "layers", None, DecoderLayout("layers", None, head="model.decoder.output_projection"),
              round_decoding=False, time_major_blocks=True),
        ArchitectureSpec("prophetnet", "text", EncoderLayout("layers", None), round_decoding=False,
                         decoder_refusal="its decoder predicts several future tokens in streams of its own"),
        ArchitectureSpec(
            "encoder-decoder", "text", None,
            inner_encoders={"bert": _BERT_LIKE, "roberta": _BERT_LIKE, "electra": _BERT_LIKE,
                            "xlm-roberta": _BERT_LIKE, "camembert": _BERT_LIKE, "bert-generation": _BERT_LIKE},
            inner_decoders={"bert": _BERT_DECODER, "gpt2": _GPT2_DECODER},
        ),
        ArchitectureSpec("whisper", "speech", EncoderLayout("layers", "layer_norm"), speech_prompt=True,
                         encoder_mask=False, feature_padding="max_length", decoder=_PRE_LN_DECODER),
        ArchitectureSpec("speech_to_text", "speech", EncoderLayout("layers", "layer_norm"), padding_sensitive=True,
                         decoder=_PRE_LN_DECODER, speech_time_axis=1),
        ArchitectureSpec("speecht5", "speech", EncoderLayout("wrapped_encoder.layers", None), padding_sensitive=True,
                         decoder=DecoderLayout("wrapped_decoder.layers", None)),
        ArchitectureSpec(
            "vision-encoder-decoder", "vision", None, encoder_mask=False,
            inner_encoders={"vit": _VIT_LIKE, "deit": _VIT_LIKE},
            inner_decoders={"bert": _BERT_DECODER, "gpt2": _GPT2_DECODER, "trocr": _POST_LN_DECODER},
        ),
    ]
}

REFUSED: dict[str, str] = {
    "seamless_m4t": "its text and speech encoders are stacked behind a shared decoder in ways not yet mapped",
    "seamless_m4t_v2": "its text and speech encoders are stacked behind a shared decoder in ways not yet mapped",
    "pop2piano": "it reads piano audio into MIDI tokens through a conditioning prefix, not a plain encoder",
    "speech-encoder-decoder": "its wav2vec2-style encoders need their feature projection mapped first",
    "t5gemma": "its encoder hidden states are not yet mapped",
    "t5gemma2": "its encoder hidden states are not yet mapped",
    "moonshine": "its encoder hidden states are not yet mapped",
    "moonshine_streaming": "its streaming encoder has no fixed encoder output to swap",
    "pix2struct": "its vision encoder uses variable-resolution patches that are not yet mapped",
    "dia": "it is a text-to-speech model",
    "canary": "its conformer encoder's hidden states are not yet mapped",
    "cohere_asr": "its conformer encoder's hidden states are not yet mapped",
    "florence2": "its language encoder reads image and text embeddings together, which is not yet mapped",
    "pp_formulanet": "its vision encoder's hidden states are not yet mapped",
    "udop": "its encoder mixes layout, image and text inputs, which is not yet mapped",
    "vibevoice": "it is a text-to-speech model",
}
"""Classes that transformers maps as seq2seq, speech-seq2seq or image-to-text, and why each is refused.

Every other model in those mappings is decoder-only (an LLM with an audio or vision front end),
which DecoderLens cannot read: its "encoder" states are not read by a cross-attending decoder."""


def resolve_decoder(config: object) -> DecoderLayout:
    """The decoder layout for a model config, or an error saying why its decoder cannot be read layer by layer."""
    spec, _ = resolve_architecture(config)
    if spec.decoder is not None:
        return spec.decoder
    inner_type = str(getattr(getattr(config, "decoder", None), "model_type", ""))
    layout = spec.inner_decoders.get(inner_type)
    if layout is None:
        reason = spec.decoder_refusal or f"its {inner_type or 'decoder'!r} decoder is not mapped yet"
        raise UnsupportedModelError(f"the 2-D lens cannot read the decoder layers of {spec.model_type}: {reason}")
    return layout


def supported_model_types() -> list[str]:
    """The ``config.model_type`` values DecoderLens reads, sorted."""
    return sorted(ARCHITECTURES)


def _supported_list() -> str:
    return ", ".join(supported_model_types())


def resolve_architecture(config: object) -> tuple[ArchitectureSpec, EncoderLayout]:
    """Look up the spec and encoder layout for a model config, or raise a message naming the fix."""
    model_type = str(getattr(config, "model_type", "") or "")
    spec = ARCHITECTURES.get(model_type)
    if spec is None:
        if model_type in REFUSED:
            raise UnsupportedModelError(
                f"DecoderLens does not support model type {model_type!r}: {REFUSED[model_type]}. "
                f"Supported model types: {_supported_list()}."
            )
        if not getattr(config, "is_encoder_decoder", False):
            raise UnsupportedModelError(
                f"{model_type or 'This model'} is not an encoder-decoder model: DecoderLens reads encoder "
                "layers through a cross-attending decoder. For decoder-only models use a logit-lens tool "
                "(e.g. tuned-lens or TransformerLens). Supported model types: " + _supported_list() + "."
            )
        raise UnsupportedModelError(
            f"Encoder-decoder model type {model_type!r} is not mapped yet, so its layers cannot be read "
            f"reliably. Supported model types: {_supported_list()}."
        )
    if spec.layout is not None:
        return spec, spec.layout
    inner_type = str(getattr(getattr(config, "encoder", None), "model_type", ""))
    layout = spec.inner_encoders.get(inner_type)
    if layout is None:
        raise UnsupportedModelError(
            f"{model_type} with a {inner_type!r} encoder is not supported; supported encoders: "
            f"{', '.join(sorted(spec.inner_encoders))}."
        )
    return spec, layout


POSITION_FIELDS = ("max_decoder_position_embeddings", "max_target_positions", "max_text_positions",
                   "max_position_embeddings", "n_positions")
"""Config fields that bound the decoder's positions, most specific first."""


def decoder_config(config: Any) -> Any:
    """The config that describes the decoder: a composite model's ``decoder`` config, else the config itself.
    (transformers v5's ``get_text_config(decoder=True)`` builds a fresh default config for Whisper, T5 and BART,
    whose sizes are not the model's.)"""
    decoder = getattr(config, "decoder", None)
    return decoder if decoder is not None and hasattr(decoder, "to_dict") else config


def decoder_position_limit(config: Any) -> int | None:
    """The most positions the decoder reads (``None``: no limit, as with relative positions). Relative-position
    decoders whose causal buckets reach their maximum distance break beyond it (the bucket formula divides by the
    log of their ratio), so that point is their limit."""
    inner = decoder_config(config)
    for name in POSITION_FIELDS:
        value = getattr(inner, name, None)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    buckets = getattr(inner, "relative_attention_num_buckets", None)
    distance = getattr(inner, "relative_attention_max_distance", None)
    if isinstance(buckets, int) and isinstance(distance, int) and buckets // 2 >= distance:
        return buckets // 2
    return None
