"""Evaluation: metrics, bootstrap, data loading, resumable runs, recipes, end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from decoderlens import GenerationSettings, InputError, RuntimeSettings
from decoderlens.evaluation.bootstrap import bootstrap
from decoderlens.evaluation.data import DataSource, load_rows
from decoderlens.evaluation.metrics import get_metric, list_metrics, mean_metric, register_metric, token_f1
from decoderlens.evaluation.recipes import list_recipes, load_recipe
from decoderlens.evaluation.runner import evaluate
from decoderlens.evaluation.settings import EvalSettings
from decoderlens.testing import sample_texts, sample_waveforms, tiny_model, tiny_processor
from support.models import lens_for


def test_metrics_against_hand_computed_values() -> None:
    assert get_metric("exact_match")(["The Cat!", "dog"], ["cat", "a dog", ]) == 1.0
    assert get_metric("accuracy")(["cat", "dog "], ["cat", "Dog"]) == 0.5
    assert token_f1("the big cat", "a cat") == pytest.approx(2 * (1 / 2) * 1 / (1 / 2 + 1))  # P=1/2, R=1
    # WER: "the cat sad" vs "the cat sat down" = 1 substitution + 1 deletion over 4 words; "" vs 2 words = 2 deletions
    assert get_metric("wer")(["the cat sad", ""], ["the cat sat down", "hello world"]) == pytest.approx(4 / 6)
    assert get_metric("cer")(["abc"], ["abd"]) == pytest.approx(1 / 3)
    assert get_metric("bleu")(["a b c d e f"], ["a b c d e f"]) == pytest.approx(100.0)
    # chrF of identical strings is 100, of disjoint strings 0
    assert get_metric("chrf")(["hello world"], ["hello world"]) == pytest.approx(100.0)
    assert get_metric("chrf")(["xyz"], ["abc"]) == pytest.approx(0.0)
    assert get_metric("logic")(["a 1", "a 0"], ["a 1", "a 1"], ["| a b", "| a b"]) == 0.5


def test_corpus_metrics_match_sacrebleu() -> None:
    import sacrebleu

    hyps = ["the cat sat on a mat", "hello there my friend", "nothing at all"]
    refs = ["the cat sat on the mat", "hello there friend", "something else entirely"]
    assert get_metric("bleu")(hyps, refs) == pytest.approx(sacrebleu.corpus_bleu(hyps, [refs]).score)
    assert get_metric("chrf")(hyps, refs) == pytest.approx(sacrebleu.corpus_chrf(hyps, [refs]).score)
    assert "nrefs:1" in get_metric("bleu").signature


def test_user_metric_registry() -> None:
    @register_metric("starts_with_w")
    def _factory():  # type: ignore[no-untyped-def]
        return mean_metric("starts_with_w", lambda p, r: p.startswith("w"))

    assert "starts_with_w" in list_metrics()
    assert get_metric("starts_with_w")(["w1", "x"], ["", ""]) == 0.5
    with pytest.raises(InputError, match="unknown metric"):
        get_metric("nope")


def test_bootstrap_contains_estimate_and_narrows() -> None:
    rng = np.random.default_rng(0)
    widths = []
    for n in (50, 2000):
        values = (rng.random(n) < 0.3).astype(float)
        stats = np.stack([values, np.ones(n)], axis=1)
        est = bootstrap(stats, lambda s: float(s[0] / s[1]), resamples=500)
        assert est.low <= est.value <= est.high and est.n == n
        widths.append(est.high - est.low)
    assert widths[1] < widths[0] / 3


def _write_jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _text_data(tmp_path: Path, count: int = 12) -> Path:
    texts = sample_texts(count, seed=4)
    return _write_jsonl(tmp_path / "data.jsonl", [{"id": f"ex{i}", "input": t, "target": " ".join(t.split()[:2])}
                                                 for i, t in enumerate(texts)])


def _settings(data: Path, **kw: object) -> EvalSettings:
    return EvalSettings(model="tiny-bart", data=DataSource(str(data)), preset="generic",
                        generation=GenerationSettings(max_new_tokens=5), runtime=RuntimeSettings(batch_size=3),
                        chunk_size=4, bootstrap_resamples=200, **kw)  # type: ignore[arg-type]


def test_end_to_end_text_eval(tmp_path: Path) -> None:
    data = _text_data(tmp_path)
    length_ratio = mean_metric("length_ratio", lambda p, r: len(p.split()) / max(1, len(r.split())))
    settings = _settings(data, score=True, metrics=["accuracy", "chrf", length_ratio])
    report = evaluate(settings, tmp_path / "out", lens=lens_for("bart"), progress=False)
    records = [json.loads(x) for x in (tmp_path / "out" / "readouts.jsonl").read_text().splitlines()]
    assert len(records) == 12 * 4
    assert {"id", "layer", "input", "output", "reference", "logprob"} <= set(records[0])
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert [e["layer"] for e in summary["layers"]] == [0, 1, 2, 3]
    top = summary["layers"][-1]
    assert top["metrics"]["agreement_with_top"]["value"] == 1.0 and top["n"] == 12
    assert {"accuracy", "chrf", "logprob", "length_ratio"} <= set(top["metrics"])
    run = json.loads((tmp_path / "out" / "run.json").read_text())
    assert summary["settings"]["max_new_tokens"] == 5 and run["max_new_tokens"] == 5  # resolved, not null
    assert "nrefs:1" in summary["metrics"]["chrf"]["signature"]
    csv_lines = (tmp_path / "out" / "summary.csv").read_text().splitlines()
    assert csv_lines[0] == "layer,metric,value,low,high,n" and len(csv_lines) > 4
    assert report.new_examples == 12
    for entry in summary["layers"]:  # every value recomputed from the records by hand
        rows = [r for r in records if r["layer"] == entry["layer"]]
        tops = {r["id"]: r["output"] for r in records if r["layer"] == 3}
        metrics = entry["metrics"]
        assert metrics["accuracy"]["value"] == pytest.approx(
            sum(r["output"].strip() == r["reference"].strip() for r in rows) / 12)
        assert metrics["length_ratio"]["value"] == pytest.approx(
            sum(len(r["output"].split()) / max(1, len(r["reference"].split())) for r in rows) / 12)
        assert metrics["logprob"]["value"] == pytest.approx(sum(r["logprob"] for r in rows) / 12, rel=1e-6)
        assert metrics["agreement_with_top"]["value"] == pytest.approx(
            sum(r["output"] == tops[r["id"]] for r in rows) / 12)
        assert f"{entry['layer']},accuracy,{metrics['accuracy']['value']:.6g}," in "\n".join(csv_lines)


def test_resume_after_interruption_gives_identical_files(tmp_path: Path) -> None:
    data = _text_data(tmp_path)
    full = tmp_path / "full"
    evaluate(_settings(data), full, lens=lens_for("bart"), progress=False)

    def crash_after_first(chunk: int) -> None:
        if chunk == 0:
            raise KeyboardInterrupt

    part = tmp_path / "part"
    with pytest.raises(KeyboardInterrupt):
        evaluate(_settings(data), part, lens=lens_for("bart"), progress=False, on_chunk=crash_after_first)
    written = (part / "readouts.jsonl").read_text().splitlines()
    assert len(written) == 4 * 4 and not (part / "summary.json").exists()
    with (part / "readouts.jsonl").open("a") as f:
        f.write('{"id": "ex4", "layer": 0, "inp')  # a torn write from the kill
    report = evaluate(_settings(data), part, lens=lens_for("bart"), progress=False)
    assert report.new_examples == 8
    for name in ("readouts.jsonl", "summary.json", "summary.csv", "run.json"):
        assert (part / name).read_bytes() == (full / name).read_bytes(), name


@pytest.mark.parametrize("torn", ["readouts.jsonl", "grid.jsonl"])
def test_every_appended_file_survives_a_torn_last_line(tmp_path: Path, torn: str) -> None:
    """A crash or a full disk mid-write leaves a torn last line in whichever file was being appended to; the next
    run cuts it off, resumes, and ends with the files of a run that was never interrupted, and the report draws."""
    from decoderlens.presentation.report import write_report

    data = _text_data(tmp_path)
    full = tmp_path / "full"
    evaluate(_settings(data, score=True, grid=True), full, lens=lens_for("bart"), progress=False)

    def crash_after_first(chunk: int) -> None:
        if chunk == 0:
            raise KeyboardInterrupt

    part = tmp_path / "part"
    with pytest.raises(KeyboardInterrupt):
        evaluate(_settings(data, score=True, grid=True), part, lens=lens_for("bart"), progress=False,
                 on_chunk=crash_after_first)
    with (part / torn).open("a") as f:
        f.write('{"id": "ex4", "encoder_layers": [0, 1')  # a torn write
    write_report(part)  # a torn folder still draws
    evaluate(_settings(data, score=True, grid=True), part, lens=lens_for("bart"), progress=False)
    for name in ("readouts.jsonl", "grid.jsonl", "summary.json", "summary.csv", "run.json"):
        assert (part / name).read_bytes() == (full / name).read_bytes(), name
    assert "ex4" in write_report(part).read_text()


def test_a_full_disk_mid_append_leaves_the_file_resumable(tmp_path: Path) -> None:
    from decoderlens.fileio import append_lines, read_complete_lines

    path = tmp_path / "log.jsonl"
    append_lines(path, ['{"a": 1}\n'])
    path.write_bytes(path.read_bytes() + b'{"a": 2, "b"')  # the disk filled up mid-line
    append_lines(path, ['{"a": 3}\n'])
    assert read_complete_lines(path) == (['{"a": 1}', '{"a": 3}'], False)
    path.write_bytes(b'{"only": "torn')
    append_lines(path, ['{"a": 4}\n'])
    assert path.read_text() == '{"a": 4}\n'


def test_changed_settings_are_refused(tmp_path: Path) -> None:
    data = _text_data(tmp_path, count=3)
    evaluate(_settings(data), tmp_path / "out", lens=lens_for("bart"), progress=False)
    with pytest.raises(InputError, match=r"other settings.*max_new_tokens"):
        evaluate(EvalSettings(model="tiny-bart", data=DataSource(str(data)),
                              generation=GenerationSettings(max_new_tokens=9)), tmp_path / "out",
                 lens=lens_for("bart"), progress=False)


def test_malformed_rows_are_reported_or_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"input": "w1 w2", "target": "w1"}\nnot json\n{"input": "", "target": "w2"}\n'
                    '{"target": "w3"}\n{"input": "w4", "target": "w4"}\n')
    loaded = load_rows(DataSource(str(path)))
    assert len(loaded.rows) == 2
    assert [p.split(":")[0] for p in loaded.problems] == ["line 2", "line 3", "line 4"]
    report = evaluate(_settings(path), tmp_path / "out", lens=lens_for("bart"), progress=False)
    assert len(report.summary.skipped) == 3
    with pytest.raises(InputError, match=r"malformed rows.*line 2"):
        evaluate(_settings(path, on_error="fail"), tmp_path / "out2", lens=lens_for("bart"), progress=False)


def test_csv_and_fields(tmp_path: Path) -> None:
    path = tmp_path / "d.tsv"
    path.write_text("q\tanswer\nw1 w2\tw1\nw3\tw3\n")
    rows = load_rows(DataSource(str(path), input_field="q", template="say {input}")).rows
    assert [r.input for r in rows] == ["say w1 w2", "say w3"] and rows[1].reference == "w3"


def test_speech_eval_from_audio_folder(tmp_path: Path) -> None:
    import soundfile as sf

    folder = tmp_path / "audio"
    folder.mkdir()
    for i, wave in enumerate(sample_waveforms(4, seed=2)):
        sf.write(folder / f"clip{i}.wav", wave, 16000)
        (folder / f"clip{i}.txt").write_text(f"w{i} w{i + 1}")
    (folder / "broken.wav").write_bytes(b"RIFFxxxxWAVEjunk")
    (folder / "broken.txt").write_text("w1")
    sf.write(folder / "untranscribed.wav", sample_waveforms(1)[0], 16000)
    settings = EvalSettings(model="tiny-whisper", data=DataSource(str(folder)), preset="asr",
                            generation=GenerationSettings(max_new_tokens=4), bootstrap_resamples=100, chunk_size=8)
    report = evaluate(settings, tmp_path / "out", lens=lens_for("whisper"), progress=False)
    assert any("broken" in p and "cannot read audio" in p for p in report.skipped)
    assert any("untranscribed" in p and "empty reference" in p for p in report.skipped)
    assert report.summary.layers[0].n == 4 and "wer" in report.summary.layers[0].metrics


def test_shipped_recipes_parse() -> None:
    names = list_recipes()
    assert {"flan-t5-triviaqa", "nllb-flores-eng-fra", "nllb-flores-eng-zul", "whisper-covost2-asr"} <= set(names)
    for name in names:
        settings = load_recipe(name)
        metrics, _ = settings.metric_objects()
        assert settings.model and settings.data.path and metrics
    assert load_recipe("nllb-flores-eng-zul").generation.tgt_lang == "zul_Latn"
    assert load_recipe("whisper-covost2-translate").generation.task == "translate"
    assert load_recipe("flan-t5-triviaqa", {"limit": 5}).data.limit == 5


def test_eval_cli_end_to_end(tmp_path: Path) -> None:
    model_dir = tmp_path / "model"
    tiny_model("t5").save_pretrained(model_dir)
    tiny_processor("t5").save_pretrained(model_dir)
    data = _text_data(tmp_path, count=5)
    cmd = [sys.executable, "-m", "decoderlens", "eval", str(model_dir), str(data), "--out", str(tmp_path / "o"),
           "--metric", "accuracy", "--metric", "token_f1", "--max-new-tokens", "4"]
    env = {"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "token_f1" in proc.stdout
    proc = subprocess.run([*cmd[:-1], "7"], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 2 and "other settings" in proc.stderr


def test_saved_datasets_folder_and_audio_manifest(tmp_path: Path) -> None:
    import datasets
    import soundfile as sf

    rows = [{"question": f"w{i} w{i + 1}", "answer": {"value": f"w{i}"}, "id": f"q{i}"} for i in range(4)]
    datasets.DatasetDict({"test": datasets.Dataset.from_list(rows)}).save_to_disk(str(tmp_path / "ds"))
    loaded = load_rows(DataSource(str(tmp_path / "ds"), input_field="question", target_field="answer.value"))
    assert [(r.id, r.input, r.reference) for r in loaded.rows][:2] == [("q0", "w0 w1", "w0"), ("q1", "w1 w2", "w1")]
    audio = tmp_path / "clips"
    audio.mkdir()
    for i, wave in enumerate(sample_waveforms(2, seed=4)):
        sf.write(audio / f"c{i}.flac", wave, 16000)
    (audio / "metadata.csv").write_text("file_name,transcription\nc0.flac,w1 w2\nc1.flac,w3\nmissing.flac,\n")
    manifest = load_rows(DataSource(str(audio)))
    assert [Path(r.input).name for r in manifest.rows] == ["c0.flac", "c1.flac"]
    assert manifest.problems and "empty reference" in manifest.problems[0]
