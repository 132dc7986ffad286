"""The API's request bodies, made from the settings dataclasses: each field has the name, type and default of the
setting it sets (defaults written once), and the settings' own ``validate`` checks it with the CLI's words."""

from __future__ import annotations

from typing import Any, Literal, get_type_hints

from pydantic import BaseModel, ConfigDict, Field, create_model

from decoderlens.settings import AttributionSettings, GenerationSettings

_STRICT = ConfigDict(extra="forbid", strict=True)
LensChoice = Literal["raw", "tuned"] | None
"""raw, or tuned (a server started with translators); ``None``: the server's default lens."""


def _settings_fields(names: tuple[str, ...], cls: type = GenerationSettings) -> dict[str, Any]:
    hints = get_type_hints(cls)
    defaults = cls()
    meta = cls.__dataclass_fields__  # type: ignore[attr-defined]
    return {name: (hints[name], Field(getattr(defaults, name), description=meta[name].metadata.get("help", "")))
            for name in names}


def _request(name: str, doc: str, settings: tuple[str, ...], **fields: Any) -> type[BaseModel]:
    model = create_model(name, __config__=_STRICT, **fields, **_settings_fields(settings),  # type: ignore[call-overload]
                         lens=(LensChoice, Field(None, description="raw, or tuned on a server started with "
                                                 "--translators (default: the server's own lens).")))
    model.__doc__ = doc
    return model  # type: ignore[no-any-return]


_READ = ("layers", "max_new_tokens", "num_beams", "tgt_lang", "language", "task", "token_scores")
ReadoutRequest = _request(
    "ReadoutRequest", "Inputs to read out at every selected layer (the JSON of ``decoderlens run --format json`` "
    "comes back).", _READ, inputs=(list[str], Field(min_length=1)))
ScoreRequest = _request(
    "ScoreRequest", "Targets to score, teacher-forced, at every selected layer.", ("layers", "tgt_lang", "top_k"),
    inputs=(list[str], Field(min_length=1)), targets=(list[str], Field(min_length=1)))
GridRequest = _request(
    "GridRequest", "The 2-D lens of targets (default: the model's own greedy outputs).",
    ("layers", "max_new_tokens", "tgt_lang", "language", "task"),
    inputs=(list[str], Field(min_length=1)), targets=(list[str] | None, None))

AttributeRequest = _request(
    "AttributeRequest", "Where each layer looks: each readout token (or target token) attributed to the source "
    "positions of the layer's states.", ("layers", "max_new_tokens", "tgt_lang", "language", "task"),
    inputs=(list[str], Field(min_length=1)), targets=(list[str] | None, None),
    **_settings_fields(tuple(AttributionSettings.__dataclass_fields__), AttributionSettings))


def attribution_of(body: BaseModel) -> AttributionSettings:
    """The attribution settings a request body sets, checked."""
    names = set(AttributionSettings.__dataclass_fields__)
    return AttributionSettings().update(**{k: v for k, v in body.model_dump().items() if k in names})


def generation_of(body: BaseModel) -> GenerationSettings:
    """The generation settings a request body sets (the others at their defaults), checked."""
    names = set(GenerationSettings.__dataclass_fields__)
    return GenerationSettings().update(**{k: v for k, v in body.model_dump().items() if k in names})
