"""Tuned DecoderLens: translators per encoder layer, their training, saving and use."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from decoderlens import DecoderLens, GenerationSettings, InputError, RuntimeSettings
from decoderlens.evaluation.data import DataSource
from decoderlens.logic import shipped_model_path
from decoderlens.testing import sample_waveforms
from decoderlens.translators import Translators, model_fingerprint
from decoderlens.tuned.cache import StateCache
from decoderlens.tuned.least_squares import NormalEquations, affine_least_squares
from decoderlens.tuned.settings import TuneSettings
from decoderlens.tuned.training import Tuner
from support.browser import needs_browser, open_page
from support.models import FAMILIES, formulas_file, generation_options, lens_for, sample_inputs


def zero_translators(lens: DecoderLens, rank: int | None = None) -> Translators:
    info = {"model": lens.name, "model_hash": model_fingerprint(lens.model, lens.adapter.encoder)}
    return Translators(lens.num_layers, lens.adapter.encoder_width, rank, info)


@pytest.mark.parametrize("family", FAMILIES)
def test_untrained_translators_are_the_raw_lens(family: str) -> None:
    lens = lens_for(family)
    items = sample_inputs(family, count=3)
    options = generation_options(family)
    raw = lens.generate(items, max_new_tokens=6, **options)
    untrained = lens.tuned_lens(zero_translators(lens, rank=4 if family == "t5" else None))
    tuned = lens.generate(items, max_new_tokens=6, lens=untrained, **options)
    assert lens.lens.name == "raw", "reading through a tuned lens changed the object's own lens"
    assert [ex.readouts for ex in tuned] == [ex.readouts for ex in raw]
    assert tuned.settings["lens"].startswith("tuned:") and raw.settings["lens"] == "raw"


def test_least_squares_recovers_a_known_affine_map() -> None:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(500, 8, generator=generator)
    matrix, bias = torch.randn(8, 8, generator=generator) * 0.3, torch.randn(8, generator=generator)
    y = x + x @ matrix.T + bias
    found_matrix, found_bias = affine_least_squares(x, y)
    assert torch.allclose(found_matrix, matrix, atol=1e-4) and torch.allclose(found_bias, bias, atol=1e-4)


def test_normal_equations_added_in_batches_solve_as_all_rows_at_once() -> None:
    generator = torch.Generator().manual_seed(1)
    x, y = torch.randn(300, 6, generator=generator), torch.randn(300, 6, generator=generator)
    whole = NormalEquations(6).add(x, y).solve()
    pieces = NormalEquations(6)
    for start in range(0, 300, 70):
        pieces.add(x[start: start + 70], y[start: start + 70])
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(whole, pieces.solve(), strict=True))
    design = torch.cat([x, torch.ones(300, 1)], 1).double()  # the same minimiser as a direct solver's
    direct = torch.linalg.lstsq(design, (y - x).double()).solution
    assert torch.allclose(whole[0], direct[:-1].T.float(), atol=1e-5)


def audio_folder(folder: Path, count: int) -> Path:
    import soundfile as sf

    folder.mkdir(parents=True)
    for i, wave in enumerate(sample_waveforms(count, seed=7)):
        sf.write(folder / f"c{i:02d}.wav", wave, 16000)
    return folder


def test_speech_tunes_in_closed_form_by_default_each_clip_encoded_once(tmp_path: Path) -> None:
    lens = lens_for("whisper")
    source = DataSource(str(audio_folder(tmp_path / "clips", 12)))
    tuner = Tuner(lens, source, TuneSettings(validation=3, step_batch=4), GenerationSettings(max_new_tokens=8),
                  RuntimeSettings())
    assert tuner.objective == "lstsq" and len(tuner.labels) == 3  # top outputs only for the validation clips
    translators = tuner.run(tmp_path / "lens", progress=False)
    info = translators.info
    assert info["objective"] == "lstsq" and info["objective_setting"] == "auto" and info["steps"] == 0
    timing = info["timing"]
    assert timing["states_encoded"] == 12 and timing["states_reused"] == 2 * 3  # validation before and after
    assert timing["states_in_memory"] == 3  # the training clips are seen once: kept only where steps follow
    assert sum(info["val_kl_tuned"]) < sum(info["val_kl_raw"])


def test_states_kept_in_memory_on_disk_or_nowhere_train_alike(tmp_path: Path) -> None:
    lens, data = lens_for("speech_to_text"), audio_folder(tmp_path / "clips", 14)  # clips encoded one at a time
    settings = TuneSettings(objective="kl", steps=4, step_batch=4, validation=4, checkpoint_every=100)

    def trained(memory: int | None, disk: int | None, name: str) -> tuple[Tuner, dict[str, torch.Tensor]]:
        original = StateCache.__post_init__

        def budgets(cache: StateCache) -> None:
            original(cache)
            cache.memory_budget, cache.disk_budget = memory or cache.memory_budget, disk

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(StateCache, "__post_init__", budgets)
            tuner = Tuner(lens, DataSource(str(data)), settings, GenerationSettings(max_new_tokens=6),
                          RuntimeSettings())
        return tuner, tuner.run(tmp_path / name, progress=False).state_dict()

    memory_tuner, in_memory = trained(None, None, "memory")
    assert memory_tuner.cache.stats.encoded == 14 == memory_tuner.cache.stats.in_memory
    nowhere_tuner, nowhere = trained(-1, 0, "nowhere")  # no room at all: examples are encoded again each time
    assert nowhere_tuner.cache.stats.encoded > 14 and nowhere_tuner.cache.stats.reused == 0
    assert all(torch.allclose(in_memory[name], nowhere[name], atol=1e-6) for name in in_memory)
    disk_tuner, on_disk = trained(-1, None, "disk")
    assert disk_tuner.cache.stats.on_disk == 14 == disk_tuner.cache.stats.encoded
    assert disk_tuner.cache.stats.in_memory == 0 and disk_tuner.cache.stats.reused > 0
    assert disk_tuner.cache._folder is None  # spilled states deleted at the end
    assert all(not torch.equal(in_memory[name], on_disk[name]) for name in in_memory)  # read back in float16


@pytest.mark.parametrize("family", ["speech_to_text", "bart", "t5"])
def test_states_spilled_to_disk_come_back_as_their_float16_rounding(family: str) -> None:
    lens, items = lens_for(family), sample_inputs(family, count=3)
    cache = StateCache(lens.parts, memory_budget=0)
    keys = ["a", "b", "c"]
    fresh = cache.encoded(keys, items)
    back = cache.encoded(keys[::-1], items[::-1])  # every one from disk, in another order
    assert cache.stats.on_disk == 3 and cache.stats.reused == 3 and cache.stats.encoded == 3
    order = torch.tensor([2, 1, 0])
    for mine, theirs in zip([*fresh.hidden_states, fresh.final_output], [*back.hidden_states, back.final_output],
                            strict=True):
        width = min(mine.shape[1], theirs.shape[1])  # the widest input sets the padding; masked beyond
        assert theirs.dtype == mine.dtype
        assert torch.equal(theirs[:, :width], mine.index_select(0, order)[:, :width].half().to(mine.dtype))
    if fresh.attention_mask is not None:
        assert torch.equal(back.attention_mask, fresh.attention_mask.index_select(0, order))
    cache.close()


@pytest.fixture(scope="module")
def logic_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return formulas_file(tmp_path_factory.mktemp("tune"), 360, seed=41, prefix="t-")


def _tuner(lens: DecoderLens, data: Path, **kw: object) -> Tuner:
    source = DataSource(str(data), input_field="formula")
    return Tuner(lens, source, TuneSettings(**{"steps": 30, "step_batch": 16, "validation": 60, **kw}),  # type: ignore[arg-type]
                 GenerationSettings(), RuntimeSettings())


def test_kl_training_lowers_every_layers_validation_kl_and_saves(logic_lens: DecoderLens, logic_data: Path,
                                                                 tmp_path: Path) -> None:
    translators = _tuner(logic_lens, logic_data).run(tmp_path / "lens", progress=False)
    info = translators.info
    assert len(info["val_kl_raw"]) == logic_lens.num_layers == len(info["val_kl_tuned"])
    assert all(t < r for r, t in zip(info["val_kl_raw"], info["val_kl_tuned"], strict=True))
    for name in ("translators.safetensors", "config.json", "README.md"):
        assert (tmp_path / "lens" / name).is_file()
    config = json.loads((tmp_path / "lens" / "config.json").read_text())
    assert config["model_hash"] == model_fingerprint(logic_lens.model, logic_lens.adapter.encoder)
    assert config["objective"] == "kl" and config["steps"] == 30 and not (tmp_path / "lens" / "checkpoint.pt").exists()
    loaded = Translators.from_pretrained(str(tmp_path / "lens"))
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), translators.state_dict().values(),
                                                 strict=True))
    again = _tuner(logic_lens, logic_data).run(tmp_path / "again", progress=False)  # seeded and deterministic
    assert all(torch.equal(a, b) for a, b in zip(again.state_dict().values(), translators.state_dict().values(),
                                                 strict=True))
    tuned = DecoderLens.from_pretrained(str(shipped_model_path()), device="cpu", translators=tmp_path / "lens")
    formulas = ["& a b", "| ! c d", "xor a <-> b c"]
    raw = logic_lens.generate(formulas)
    read = tuned.generate(formulas)
    assert [ex.layer(6) for ex in read] == [ex.layer(6) for ex in raw]  # the top layer is never translated
    assert [ex.readouts for ex in read] != [ex.readouts for ex in raw]


def test_the_teacher_is_computed_once_per_example(logic_lens: DecoderLens, logic_data: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from decoderlens.forcing import decoder_inputs

    tuner = _tuner(logic_lens, logic_data)
    rows, teachers = tuner.train_rows[:5], []
    for control_seed in (None, 3):  # the control's teacher is each row's own example, whatever states it reads
        batch = tuner.batch(rows, control_seed)
        encoded, decoder_in = tuner.encoded(rows), decoder_inputs(logic_lens.model, batch.labels)
        tuner.cache.close()
        fresh = tuner.teacher(batch, tuner.encoded([rows[s] for s in batch.sources]), decoder_in)
        with monkeypatch.context() as patch:
            patch.setattr("decoderlens.tuned.training.teacher_forced", None)  # a second pass would fail
            kept = tuner.teacher(batch, encoded, decoder_in)
        mask = batch.labels != -100
        assert torch.allclose(fresh[mask], kept[mask], atol=1e-6)
        teachers.append(fresh[mask])
    assert batch.sources != sorted(batch.sources) and torch.allclose(*teachers, atol=1e-5)
    assert tuner.cache.stats.bytes_in_memory > 0


def test_lstsq_and_the_control(logic_lens: DecoderLens, logic_data: Path, tmp_path: Path) -> None:
    fitted = _tuner(logic_lens, logic_data, objective="lstsq").run(tmp_path / "ls", progress=False)
    assert fitted.info["steps"] == 0 and fitted.info["val_kl_tuned"][0] < fitted.info["val_kl_raw"][0]
    control = _tuner(logic_lens, logic_data, objective="lstsq", control=True).run(tmp_path / "control",
                                                                                   progress=False)
    assert control.info["control"] is True
    mean = sum(fitted.info["val_kl_tuned"]) / len(fitted.info["val_kl_tuned"])
    shuffled = sum(control.info["val_kl_tuned"]) / len(control.info["val_kl_tuned"])
    assert shuffled > mean, "a fit to shuffled pairs did as well as the real one: the control controls nothing"


def test_resume_from_a_checkpoint(logic_lens: DecoderLens, logic_data: Path, tmp_path: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    whole = _tuner(logic_lens, logic_data, steps=12, checkpoint_every=6).run(tmp_path / "whole", progress=False)
    part = _tuner(logic_lens, logic_data, steps=12, checkpoint_every=6)
    original, calls = part.layer_losses, []

    def interrupted(batch: object, translate: bool) -> torch.Tensor:
        calls.append(translate)
        if translate and len(calls) > 4 + 7:  # 4 validation batches, then 7 training steps: stop in the 7th
            raise KeyboardInterrupt
        return original(batch, translate)  # type: ignore[arg-type]

    monkeypatch.setattr(part, "layer_losses", interrupted)
    with pytest.raises(KeyboardInterrupt):
        part.run(tmp_path / "part", progress=False)
    assert torch.load(tmp_path / "part" / "checkpoint.pt", weights_only=False)["step"] == 6
    resumed = _tuner(logic_lens, logic_data, steps=12, checkpoint_every=6).run(tmp_path / "part", progress=False)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(resumed.state_dict().values(),
                                                               whole.state_dict().values(), strict=True))


def test_translators_for_another_model_are_refused(tmp_path: Path) -> None:
    lens = lens_for("bart")
    foreign = zero_translators(lens_for("mbart"))
    with pytest.raises(InputError, match="trained for another model"):
        lens.tuned_lens(foreign)
    with pytest.warns(UserWarning, match="used anyway"):
        lens.tuned_lens(foreign, force=True)
    wrong_shape = Translators(lens.num_layers + 1, lens.adapter.encoder_width, info={"model_hash": "x"})
    with pytest.raises(InputError, match="encoder of 4 layers"):
        lens.tuned_lens(wrong_shape, force=True)
    with pytest.raises(InputError, match="holds no translators"):
        lens.tuned_lens(tmp_path)


def test_objective_reference_needs_references(logic_lens: DecoderLens, tmp_path: Path) -> None:
    data = tmp_path / "inputs.jsonl"
    data.write_text("".join(json.dumps({"formula": f}) + "\n" for f in ["& a b", "| c d", "! e"] * 5))
    with pytest.raises(InputError, match=r"cannot tell which field holds the target .* pass --target-field"):
        Tuner(logic_lens, DataSource(str(data), input_field="formula"), TuneSettings(objective="reference"),
              GenerationSettings(), RuntimeSettings())
    Tuner(logic_lens, DataSource(str(data), input_field="formula"), TuneSettings(validation=3), GenerationSettings(),
          RuntimeSettings())  # kl needs none


def test_eval_with_raw_and_tuned_lenses(logic_lens: DecoderLens, logic_data: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from decoderlens.cli.app import app

    runner = CliRunner()
    model = str(shipped_model_path())
    tuned = runner.invoke(app, ["tune", model, str(logic_data), "--input-field", "formula", "--out",
                                str(tmp_path / "lens"), "--steps", "5", "--validation", "40"])
    assert tuned.exit_code == 0, tuned.stderr
    assert "validation KL" in tuned.stderr
    result = runner.invoke(app, ["eval", model, str(logic_data), "--input-field", "formula", "--target-field",
                                 "target", "--preset", "logic", "--limit", "24", "--translators",
                                 str(tmp_path / "lens"), "--lens", "both", "--out", str(tmp_path / "both")])
    assert result.exit_code == 0, result.stderr
    summary = json.loads((tmp_path / "both" / "summary.json").read_text())
    assert len(summary["layers"]) == len(summary["raw_layers"]) == 7
    assert summary["settings"]["lens"].startswith("both tuned:")
    records = [json.loads(line) for line in (tmp_path / "both" / "readouts.jsonl").read_text().splitlines()]
    assert sum(r.get("lens") == "raw" for r in records) == 24 * 6 and len(records) == 24 * 13
    report = runner.invoke(app, ["report", str(tmp_path / "both")])
    assert report.exit_code == 0 and '"label": "raw lens"' in (tmp_path / "both" / "report.html").read_text()
    table = runner.invoke(app, ["eval", model, str(logic_data), "--input-field", "formula", "--target-field",
                                "target", "--preset", "logic", "--limit", "24", "--translators",
                                str(tmp_path / "lens"), "--lens", "both", "--out", str(tmp_path / "both")])
    assert table.exit_code == 0 and " raw " in table.stdout and " tuned " in table.stdout  # both, labelled
    plotted = runner.invoke(app, ["plot", str(tmp_path / "both"), "--figure-format", "svg"])
    figure = (tmp_path / "both" / "figures" / "metrics.svg").read_text()
    assert plotted.exit_code == 0 and "raw lens" in figure and "tuned lens" in figure
    if needs_browser.args[0]:  # no browser here: the page's JSON was checked above
        return
    manager, browser, page, errors, _ = open_page(tmp_path / "both" / "report.html")
    try:
        labels = page.locator("article.example").first.locator("td.layer").all_inner_texts()
        assert labels[:2] == ["0 raw", "0 tuned"] and labels[-1] == "6 (top)"  # a layer's rows together
        raw_row = page.locator("article.example").first.locator("tr[data-lens='raw']").first
        assert raw_row.locator("td.score").count() == 3 and raw_row.locator("td.score").first.inner_text()
        options = page.locator("#condition option").all_inner_texts()
        assert any("layer 0 raw wrong" in o for o in options) and any("layer 0 tuned wrong" in o for o in options)
        assert page.locator("#curves .panel").first.locator(".legend span").count() == 3  # chance, raw, tuned
        assert errors == []
    finally:
        browser.close()
        manager.stop()
    run = runner.invoke(app, ["run", model, "& a b", "--translators", str(tmp_path / "lens"), "--format", "json"])
    assert run.exit_code == 0 and json.loads(run.stdout)["settings"]["lens"].startswith("tuned:")
    bad = runner.invoke(app, ["eval", model, str(logic_data), "--lens", "tuned", "--out", str(tmp_path / "x")])
    assert bad.exit_code == 2 and "needs translators" in bad.stderr
