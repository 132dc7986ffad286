"""Bad input gets a clear DecoderLensError that names the fix, never a deep torch traceback."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import transformers as tf

from decoderlens import DecoderLens, InputError, LayerSelectionError, UnsupportedModelError
from decoderlens.inputs import load_audio
from support.models import lens_for, sample_inputs


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
    lens = lens_for("whisper")
    out = lens.generate([str(path)], layers=-1, max_new_tokens=4)
    assert out[0].input == str(path)
    stored, rate = sf.read(path, dtype="float32")
    assert rate == 8000
    resampled = load_audio(str(path), 16000)
    assert abs(resampled.size - 2 * stored.size) <= 2, "the 8 kHz file was not resampled to the model's 16 kHz"
    in_memory = lens.generate([(stored, 8000)], layers=-1, max_new_tokens=4)
    assert out[0].readouts == in_memory[0].readouts, "the file reads out unlike the same samples in memory"
    assert all(torch.equal(a, b) for a, b in zip(lens.encode([str(path)]).hidden_states,
                                                 lens.encode([resampled]).hidden_states, strict=True))


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


@pytest.mark.parametrize(
    ("options", "message"),
    [({"num_beams": 0}, r"num_beams \(--num-beams\) must be a whole number of at least 1, got 0"),
     ({"batch_size": 0}, r"batch_size \(--batch-size\) must be a whole number of at least 1, got 0"),
     ({"max_new_tokens": 0}, r"max_new_tokens \(--max-new-tokens\) must be a whole number of at least 1, got 0"),
     ({"max_new_tokens": -1}, r"max_new_tokens \(--max-new-tokens\) must be a whole number of at least 1, got -1"),
     ({"final_norm": "maybe"}, r"final_norm \(--final-norm\) must be one of auto, none, got 'maybe'"),
     ({"layers": True}, r"layers \(--layers\) must be 'all', a list like '0,3,-1' or a slice like '2:6', got True"),
     ({"layers": ""}, r"layer selection '' is empty"),
     ({"max_rows": 0}, r"max_rows \(--max-rows\) must be a whole number of at least 1"),
     ({"top_length_cap": -1.0}, r"top_length_cap \(--top-length-cap\) must be a number of at least 0")],
)
def test_api_validates_like_the_command_line(options: dict[str, object], message: str) -> None:
    lens = lens_for("t5")
    with pytest.raises(ValueError, match=message):
        lens.generate(["w1 w2"], **options)  # type: ignore[arg-type]


def test_score_validates_like_generate() -> None:
    with pytest.raises(ValueError, match=r"batch_size \(--batch-size\)"):
        lens_for("t5").score(["w1"], ["w2"], batch_size=0)
    with pytest.raises(ValueError, match=r"final_norm \(--final-norm\)"):
        lens_for("t5").score(["w1"], ["w2"], final_norm="maybe")  # type: ignore[arg-type]


def test_loading_a_file_of_another_kind_says_so(tmp_path: Path) -> None:
    from decoderlens import LensOutput, ScoreOutput

    scores = lens_for("t5").score(["w1"], ["w2"], layers=-1)
    scores.save(tmp_path / "scores.json")
    with pytest.raises(InputError, match=r"does not hold a LensOutput.*LensOutput.save\(\)"):
        LensOutput.load(tmp_path / "scores.json")
    (tmp_path / "junk.json").write_text("not json at all")
    with pytest.raises(InputError, match="cannot read a JSON file"):
        ScoreOutput.load(tmp_path / "junk.json")
    with pytest.raises(InputError, match="cannot read a JSON file"):
        ScoreOutput.load(tmp_path / "missing.json")


def test_english_only_whisper_accepts_english() -> None:
    lens = lens_for("whisper")
    assert not getattr(lens.model.generation_config, "lang_to_id", None)  # the tiny model is English-only
    wave = sample_inputs("whisper", count=1)
    plain = lens.generate(wave, layers=-1, max_new_tokens=4)
    assert lens.generate(wave, layers=-1, max_new_tokens=4, language="en").to_dict()["examples"] == \
        plain.to_dict()["examples"]
    assert lens.generate(wave, layers=-1, max_new_tokens=4, task="transcribe")[0].readouts == plain[0].readouts
    with pytest.raises(InputError, match="English-only"):
        lens.generate(wave, language="de")


def test_unknown_device_is_refused() -> None:
    from decoderlens.loading import resolve_device

    with pytest.raises(InputError, match=r"unknown device 'tpu': use auto, cpu, cuda, cuda:N or mps"):
        resolve_device("tpu")
