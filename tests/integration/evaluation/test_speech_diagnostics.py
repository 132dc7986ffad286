"""Speech diagnostics per layer: loops, empty readouts, hallucination on clips without speech, and the language
each layer detects, on tiny random Whisper models (real checkpoints where they are built)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from decoderlens import DecoderLens, GenerationSettings
from decoderlens.evaluation.data import DataSource, load_rows
from decoderlens.evaluation.folder import EvalFolder
from decoderlens.evaluation.metrics import repeats
from decoderlens.evaluation.nonspeech import KINDS, nonspeech_clips
from decoderlens.evaluation.runner import evaluate
from decoderlens.evaluation.settings import EvalSettings
from decoderlens.testing import sample_waveforms, tiny_model, tiny_processor

REAL_BASE = Path.home() / ".cache" / "real-whisper" / "whisper-base"
needs_real_base = pytest.mark.skipif(
    not REAL_BASE.is_dir() or shutil.which("espeak-ng") is None,
    reason="needs real Whisper base (../shared/models/real-whisper/build.sh) and espeak-ng")


def spoken(folder: Path, language: str, text: str) -> str:
    """``text`` spoken by espeak-ng in ``language``, as a clip in ``folder``."""
    clip = folder / "clip.wav"
    subprocess.run(["espeak-ng", "-v", language, "-w", str(clip), text], check=True, capture_output=True)
    return str(clip)


@pytest.mark.parametrize(("text", "loops"), [
    ("T B B B B B", True), ("and then and then and then", True), ("a b c a b c a b c", True),
    ("the cat sat on the mat", False), ("very very very good", False), ("", False), ("no no", False),
])
def test_a_loop_is_a_word_four_times_or_a_phrase_three_times(text: str, loops: bool) -> None:
    assert repeats(text) is loops


def test_clips_without_speech_are_seeded_quiet_and_of_every_kind() -> None:
    clips = nonspeech_clips(len(KINDS) + 1, 16000)
    again = nonspeech_clips(len(KINDS) + 1, 16000)
    assert [name.rsplit(" ", 1)[0] for name, _ in clips] == [*KINDS, KINDS[0]]
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(clips, again, strict=True))
    assert all(wave.shape == (80000,) and wave.dtype == np.float32 and np.abs(wave).max() <= 0.1 for _, wave in clips)


def multilingual_whisper() -> DecoderLens:
    """The tiny Whisper with two of its words as language tokens, as a multilingual checkpoint maps them."""
    model, processor = tiny_model("whisper"), tiny_processor("whisper")
    vocab = processor.tokenizer.get_vocab()
    model.generation_config.lang_to_id = {"<|w5|>": vocab["w5"], "<|w6|>": vocab["w6"]}
    model.generation_config.is_multilingual = True
    return DecoderLens(model, processor, name="tiny-multilingual-whisper")


def test_each_layer_detects_a_language() -> None:
    lens = multilingual_whisper()
    out = lens.detect_language(sample_waveforms(3, seed=1))
    assert len(out) == 3 and [ll.layer for ll in out[0].layers] == list(range(lens.num_layers + 1))
    for example in out:
        for layer in example.layers:
            assert layer.language in ("w5", "w6") and 0.5 <= layer.probability <= 1.0
            assert layer.probability + sum(g.probability for g in layer.runners_up) == pytest.approx(1, abs=1e-3)
    assert "language" in str(out) and len(out.to_pandas()) == 3 * (lens.num_layers + 1)


def test_speech_eval_reports_every_diagnostic(tmp_path: Path) -> None:
    import soundfile as sf

    folder = tmp_path / "clips"
    folder.mkdir()
    rows = []
    for i, wave in enumerate(sample_waveforms(6, seed=3)):
        sf.write(folder / f"c{i}.wav", wave, 16000)
        rows.append({"file_name": f"c{i}.wav", "text": f"w{i} w{i + 1}", "language": "w5" if i % 3 else "w6"})
    (folder / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    loaded = load_rows(DataSource(str(folder)))
    assert [r.language for r in loaded.rows] == [r["language"] for r in rows] and loaded.rows[0].reference == "w0 w1"
    settings = EvalSettings(model="tiny", data=DataSource(str(folder)), preset="generic", nonspeech=3,
                            generation=GenerationSettings(max_new_tokens=4, language="w5"), bootstrap_resamples=50)
    report = evaluate(settings, tmp_path / "out", lens=multilingual_whisper(), progress=False)
    summary = report.summary
    for name in ("repetition", "empty", "hallucination", "language"):  # the generic preset asked for none of them
        assert name in summary.metrics and all(name in entry.metrics for entry in summary.layers), name
    assert summary.metrics["language"].baseline == pytest.approx(4 / 6)  # always the most common language
    assert summary.metrics["hallucination"].higher_is_better is False
    records = EvalFolder(tmp_path / "out").records()
    assert all(r.language in ("w5", "w6") and r.detected_language in ("w5", "w6") for r in records)
    heard = [json.loads(line) for line in (tmp_path / "out" / "nonspeech.jsonl").read_text().splitlines()]
    assert len(heard) == 3 * (summary.num_encoder_layers + 1) and {"clip", "layer", "output"} <= set(heard[0])
    (table,) = EvalFolder(tmp_path / "out").tables()
    assert table.title == "Language detected per layer" and len(table.rows) == 2 * (summary.num_encoder_layers + 1)


def test_a_text_model_gets_no_speech_diagnostics(logic_lens: DecoderLens, tmp_path: Path) -> None:
    data = tmp_path / "d.jsonl"
    data.write_text('{"formula": "& a b", "target": "a 1 b 1"}\n{"formula": "! a", "target": "a 0"}\n')
    settings = EvalSettings(model="logic", data=DataSource(str(data)), preset="logic", bootstrap_resamples=20)
    summary = evaluate(settings, tmp_path / "out", lens=logic_lens, progress=False).summary
    assert not {"repetition", "empty", "hallucination", "language"} & set(summary.metrics)
    assert not (tmp_path / "out" / "nonspeech.jsonl").exists()


@needs_real_base
def test_real_whisper_base_detects_english_at_its_top_layer(tmp_path: Path) -> None:
    clip = spoken(tmp_path, "en", "The house is small and the garden is green.")
    lens = DecoderLens.from_pretrained(str(REAL_BASE), device="cpu")
    top = lens.detect_language([clip], layers=[-1])[0].layers[0]
    assert top.language == "en" and top.probability > 0.5


def test_references_are_scored_under_the_readouts_prompt() -> None:
    lens = multilingual_whisper()
    vocab = lens.tokenizer.get_vocab()
    scored = lens.score(sample_waveforms(1, seed=5), ["w1 w2"], language="w6", layers=[-1])[0].layers[0].tokens
    # the language the readouts are decoded in comes first, once, then the text: not the tokenizer's own prefix
    assert [t.token_id for t in scored][:3] == [vocab["w6"], vocab["w1"], vocab["w2"]]


@needs_real_base
def test_real_whisper_scores_its_own_transcript_as_it_wrote_it(tmp_path: Path) -> None:
    clip = spoken(tmp_path, "de", "Das Haus ist klein und der Garten ist grün.")
    lens = DecoderLens.from_pretrained(str(REAL_BASE), device="cpu")
    top = lens.generate([clip], language="de", layers=[-1], token_scores=True)[0].readouts[0]
    scored = lens.score([clip], [top.text], language="de", layers=[-1])[0].layers[0].tokens
    text = [t for t in scored if t.token_id in top.token_ids]
    assert [t.token_id for t in scored[3:3 + len(top.token_ids)]] == top.token_ids  # after <|de|><|transcribe|>...
    assert all(t.rank == 0 for t in text[:3])  # the model's own words are its top predictions
