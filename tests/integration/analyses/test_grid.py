"""The 2-D lens (encoder layer x decoder layer), for every family whose decoder is mapped."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from decoderlens import DecoderLens, GenerationSettings, UnsupportedModelError
from decoderlens.adapter import module_at
from decoderlens.decoder_head import DecoderHead
from decoderlens.decoding import Strategy, plan_decoding
from decoderlens.forcing import decoder_inputs, target_labels
from decoderlens.results import GridOutput
from decoderlens.testing import bert2gpt2, sample_texts, word_tokenizer
from support.models import FAMILIES, generation_options, lens_for, sample_inputs

GRID_FAMILIES = [f for f in FAMILIES if f != "prophetnet"]
TARGETS = ["w1 w2 w3", "w4", "w5 w6 w7 w8 w9"]


def _options(family: str) -> dict[str, Any]:
    return generation_options(family)


@pytest.mark.parametrize("family", GRID_FAMILIES)
def test_the_decoder_table_reproduces_the_models_own_logits(family: str) -> None:
    """Every intermediate decoder state is a block's raw output, and the table's final norm, scaling, head and bias
    turn the last block's raw output into exactly the model's logits."""
    lens = lens_for(family)
    head = DecoderHead(lens.model)
    encoded = lens.encode(sample_inputs(family, count=3))
    labels = target_labels(lens.tokenizer, lens.model, TARGETS, _options(family).get("tgt_lang"))
    blocks = module_at(lens.model.get_decoder(), head.layout.layers)
    raw: list[torch.Tensor] = []
    hooks = [b.register_forward_hook(lambda m, a, out: raw.append(out[0] if isinstance(out, tuple) else out))
             for b in blocks]
    kwargs = {} if encoded.attention_mask is None else {"attention_mask": encoded.attention_mask}
    try:
        with torch.no_grad():
            out = lens.model(encoder_outputs=encoded.as_encoder_outputs(encoded.final_output),
                             decoder_input_ids=decoder_inputs(lens.model, labels), output_hidden_states=True, **kwargs)
    finally:
        for hook in hooks:
            hook.remove()
    depth = head.num_layers
    assert len(raw) == depth == len(out.decoder_hidden_states) - 1
    batch_first = out.decoder_hidden_states[1].shape
    raw = [r if r.shape == batch_first else r.transpose(0, 1) for r in raw]  # time-major blocks (FSMT)
    for d in range(1, depth):
        assert torch.equal(out.decoder_hidden_states[d], raw[d - 1]), f"decoder state {d} is not block {d}'s output"
    with torch.no_grad():
        mine = head.logits(raw[-1])
    assert torch.allclose(mine, out.logits, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("family", GRID_FAMILIES)
def test_grid_column_d_equals_score_and_stacked_equals_one_layer(family: str) -> None:
    lens = lens_for(family)
    items = sample_inputs(family, count=3)
    options = _options(family)
    grid = lens.grid(items, TARGETS, tgt_lang=options.get("tgt_lang"))
    scores = lens.score(items, TARGETS, tgt_lang=options.get("tgt_lang"))
    depth = grid.num_decoder_layers
    assert depth == DecoderHead(lens.model).num_layers and len(grid[0].cells) == (lens.num_layers + 1) * depth
    for example, scored in zip(grid, scores, strict=True):
        for layer in range(lens.num_layers + 1):
            want = [t.logprob for t in scored.layer(layer).tokens]
            assert example.cell(layer, depth).token_logprobs == pytest.approx(want, abs=1e-4)
            assert example.cell(layer, depth).ranks == [t.rank for t in scored.layer(layer).tokens]
        assert len({round(c.logprob, 3) for c in example.cells}) > depth, "cells too alike to test anything"
    alone = lens.grid(items, TARGETS, layers=[1], tgt_lang=options.get("tgt_lang"))
    for together, single in zip(grid, alone, strict=True):
        for d in range(1, depth + 1):
            assert single.cell(1, d).token_logprobs == pytest.approx(together.cell(1, d).token_logprobs, abs=1e-4)
            assert single.cell(1, d).top_tokens == together.cell(1, d).top_tokens


@pytest.mark.parametrize("family", ["t5", "pegasus", "marian", "mbart"])
def test_grid_of_the_models_own_output_ranks_it_first_at_the_top(family: str) -> None:
    lens = lens_for(family)
    plan = plan_decoding(lens.model, lens.adapter.spec, lens.processor, **_options(family))
    assert plan.strategy is Strategy.own_loop and len(plan.prompt) == 1
    items = sample_inputs(family, count=4, seed=2)
    grid = lens.grid(items, max_new_tokens=6)
    readouts = lens.generate(items, layers=-1, max_new_tokens=6, top_length_cap=None)
    for example, readout in zip(grid, readouts, strict=True):
        assert example.target == readout.readouts[0].text
        top = example.cell(lens.num_layers, grid.num_decoder_layers)
        assert all(rank == 0 for rank in top.ranks[: len(readout.readouts[0].token_ids)])


def test_grid_refuses_unmapped_decoders_and_roundtrips(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedModelError, match="2-D lens"):
        lens_for("prophetnet").grid(["w1 w2"], ["w3"])
    grid = lens_for("t5").grid(["w1 w2"], ["w3 w4"], layers="0,-1")
    grid.save(tmp_path / "grid.json")
    assert GridOutput.load(tmp_path / "grid.json") == grid
    assert len(grid.to_pandas()) == 2 * grid.num_decoder_layers
    assert len(grid[0].matrix()) == 2 and len(grid[0].matrix()[0]) == grid.num_decoder_layers


def test_grid_command_json_and_page(tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from decoderlens.cli.app import app
    from decoderlens.testing import tiny_model, tiny_processor

    model = tmp_path / "t5"
    tiny_model("t5").save_pretrained(model)
    tiny_processor("t5").save_pretrained(model)
    result = CliRunner().invoke(app, ["grid", str(model), "w1 w2 w3", "w4 w5", "--format", "json", "--html",
                                      str(tmp_path / "grid.html")])
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert set(data) >= {"model", "num_encoder_layers", "num_decoder_layers", "examples"}
    example = data["examples"][0]
    assert set(example) >= {"input", "target", "tokens", "cells"} and example["target"] == "w4 w5"
    assert len(example["cells"]) == 4 * 2
    assert set(example["cells"][0]) >= {"encoder_layer", "decoder_layer", "logprob", "token_logprobs", "top_tokens"}
    assert "2-D lens" in (tmp_path / "grid.html").read_text()


def test_eval_grid_adds_mean_cells_and_per_example_grids(tmp_path: Path) -> None:
    import json

    from decoderlens.evaluation.data import DataSource
    from decoderlens.evaluation.folder import EvalFolder
    from decoderlens.evaluation.runner import evaluate
    from decoderlens.evaluation.settings import EvalSettings
    from decoderlens.presentation.report import write_report
    from decoderlens.testing import sample_texts

    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps({"id": f"e{i}", "input": t, "target": " ".join(t.split()[:2])}) + "\n"
                            for i, t in enumerate(sample_texts(5, seed=3))))
    settings = EvalSettings(model="tiny-t5", data=DataSource(str(data)), grid=True, score=True,
                            generation=GenerationSettings(max_new_tokens=4), bootstrap_resamples=50, chunk_size=2)
    report = evaluate(settings, tmp_path / "out", lens=lens_for("t5"), progress=False)
    grid = report.summary.grid
    assert len(grid) == 4 * 2 and all(c.logprob.n == 5 for c in grid)
    records = EvalFolder(tmp_path / "out").grid_records()
    assert len(records) == 5 and len(records[0].logprob) == 4
    top = next(c for c in grid if (c.encoder_layer, c.decoder_layer) == (3, 2))
    assert top.logprob.value == pytest.approx(report.summary.layer(3).metrics["logprob"].value, abs=1e-3)
    page = write_report(tmp_path / "out").read_text()
    assert "Mean log-probability of the reference" in page


def test_gpt2_decoders_of_text_encoder_decoders_are_read_layer_by_layer() -> None:
    """A BERT encoder with a GPT-2 decoder: the top layer reproduces ``generate`` and the 2-D lens's last
    column equals ``score`` (the vision family's tiny model carries the same decoder through every test)."""
    model = bert2gpt2()
    lens = DecoderLens(model, word_tokenizer())
    items = sample_texts(3, seed=4)
    top = lens.generate(items, layers=-1, max_new_tokens=6, top_length_cap=None)
    batch = lens.tokenizer(items, padding=True, return_tensors="pt")
    with torch.no_grad():
        expected = model.generate(**batch, max_new_tokens=6).tolist()
    eos = model.config.eos_token_id
    new = [row[1:] for row in expected]
    assert [ex.readouts[0].token_ids for ex in top] == [row[: row.index(eos)] if eos in row else row for row in new]
    grid = lens.grid(items, TARGETS)
    scores = lens.score(items, TARGETS)
    depth = grid.num_decoder_layers
    for example, scored in zip(grid, scores, strict=True):
        for layer in range(lens.num_layers + 1):
            want = [t.logprob for t in scored.layer(layer).tokens]
            assert example.cell(layer, depth).token_logprobs == pytest.approx(want, abs=1e-4)
        assert len({round(c.logprob, 3) for c in example.cells}) > depth
