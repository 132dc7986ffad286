"""Every encoder-decoder family transformers maps is either tested here or explicitly refused."""

from __future__ import annotations

import pytest
import transformers.models.auto.modeling_auto as auto
from transformers import CONFIG_MAPPING

from decoderlens import ARCHITECTURES, REFUSED, UnsupportedModelError
from decoderlens.architectures import resolve_architecture
from support.models import FAMILIES

MAPPINGS = ("MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES", "MODEL_FOR_SPEECH_SEQ_2_SEQ_MAPPING_NAMES",
            "MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES", "MODEL_FOR_VISION_2_SEQ_MAPPING_NAMES")


def mapped_model_types() -> set[str]:
    types: set[str] = set()
    for name in MAPPINGS:
        types |= set(getattr(auto, name, {}))
    return types


def test_every_supported_family_has_a_tiny_model() -> None:
    assert set(ARCHITECTURES) == set(FAMILIES)


@pytest.mark.parametrize("model_type", sorted(mapped_model_types()))
def test_mapped_family_is_covered_or_refused(model_type: str) -> None:
    if model_type in ARCHITECTURES:
        assert model_type in FAMILIES  # covered by the invariant tests
        return
    config = CONFIG_MAPPING[model_type]()
    if model_type not in REFUSED:
        assert not getattr(config, "is_encoder_decoder", False), f"{model_type} is encoder-decoder: map or refuse"
    with pytest.raises(UnsupportedModelError, match="Supported model types"):
        resolve_architecture(config)
