"""Bad input gets a clear DecoderLensError that names the fix, never a deep torch traceback."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import transformers as tf

from conftest import lens_for, sample_inputs
from decoderlens import DecoderLens, InputError, LayerSelectionError, UnsupportedModelError


def test_decoder_only_model_is_refused_with_pointer_to_logit_lens() -> None:
    model = tf.GPT2LMHeadModel(tf.GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=50))
    with pytest.raises(UnsupportedModelError, match="logit-lens"):
        DecoderLens(model, None)


def test_refused_encoder_decoder_lists_supported_types() -> None:
    config = tf.UdopConfig()
    with pytest.raises(UnsupportedModelError, match=r"Supported model types: .*t5"):
        from decoderlens.architectures import resolve_architecture

        resolve_architecture(config)


@pytest.mark.parametrize("layers", [7, -9, "0,99", "a:b", "5:5"])
def test_unknown_layer(layers: object) -> None:
    lens = lens_for("t5")
    with pytest.raises(LayerSelectionError, match=r"0\.\.3|selects no layer|cannot parse"):
        lens.generate(["w1 w2"], layers)  # type: ignore[arg-type]


def test_empty_text_and_no_inputs() -> None:
    lens = lens_for("bart")
    with pytest.raises(InputError, match="input #1 is empty"):
        lens.generate(["w1", "   "])
    with pytest.raises(InputError, match="at least one input"):
        lens.generate([])


def test_over_long_input_names_truncation_option() -> None:
    lens = lens_for("bart")
    long_text = " ".join(["w3"] * 500)
    with pytest.raises(InputError, match=r"at most 128.*truncation"):
        lens.generate([long_text])
    out = lens.generate([long_text], layers=-1, truncation=True, max_new_tokens=3)
    assert len(out[0].readouts) == 1


def test_missing_target_language_for_multilingual_model() -> None:
    lens = lens_for("m2m_100")
    with pytest.raises(InputError, match=r"needs a target language.*tgt_lang"):
        lens.generate(["w1 w2"])
    with pytest.raises(InputError, match="unknown target language"):
        lens.generate(["w1 w2"], tgt_lang="xx_Nope")


def test_target_language_for_monolingual_model() -> None:
    with pytest.raises(InputError, match="take no target language"):
        lens_for("t5").generate(["w1"], tgt_lang="de")


def test_unreadable_audio_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF0000WAVEthis is not audio")
    lens = lens_for("whisper")
    with pytest.raises(InputError, match=r"cannot read audio file .*broken.wav"):
        lens.generate([str(broken)])
    with pytest.raises(InputError, match="does not exist"):
        lens.generate([str(tmp_path / "missing.flac")])


def test_audio_file_is_read_and_resampled(tmp_path: Path) -> None:
    import soundfile as sf

    wave = sample_inputs("whisper", count=1)[0]
    path = tmp_path / "clip.wav"
    sf.write(path, np.interp(np.arange(0, len(wave), 2.0), np.arange(len(wave)), wave), 8000)  # 8 kHz file
    out = lens_for("whisper").generate([str(path)], layers=-1, max_new_tokens=4)
    assert out[0].input == str(path)


def test_image_given_to_text_model() -> None:
    image = sample_inputs("vision-encoder-decoder", count=1)[0]
    with pytest.raises(InputError, match="reads text"):
        lens_for("t5").generate([image])


def test_text_given_to_speech_and_vision_models() -> None:
    with pytest.raises(InputError, match="is not audio"):
        lens_for("whisper").generate(["hello there"])
    with pytest.raises(InputError, match="not an image file"):
        lens_for("vision-encoder-decoder").generate(["hello there"])


def test_broken_image_file(tmp_path: Path) -> None:
    path = tmp_path / "x.png"
    path.write_bytes(b"not a png")
    with pytest.raises(InputError, match="cannot read image"):
        lens_for("vision-encoder-decoder").generate([str(path)])


def test_language_option_on_text_model_and_score_mismatch() -> None:
    with pytest.raises(InputError, match="Whisper-style"):
        lens_for("t5").generate(["w1"], language="en")
    with pytest.raises(InputError, match="one target per input"):
        lens_for("t5").score(["w1", "w2"], ["w3"])
    with pytest.raises(InputError, match="target #0 is empty"):
        lens_for("t5").score(["w1"], [""])
