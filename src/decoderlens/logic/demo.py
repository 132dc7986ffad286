"""The demo: read out every encoder layer of the shipped logic model on held-out formulas.

Its output folder is a regular evaluation folder (``readouts.jsonl``, ``summary.json``, ``summary.csv``,
``report.html``) plus ``logic_analysis.json`` with the breakdown by formula size and depth, which the report
shows too.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from pathlib import Path

from rich.console import Console

from decoderlens.engine import DecoderLens
from decoderlens.evaluation.data import DataSource
from decoderlens.evaluation.folder import EvalFolder
from decoderlens.evaluation.runner import evaluate
from decoderlens.evaluation.settings import EvalSettings
from decoderlens.fileio import atomic_write_text
from decoderlens.logic import shipped_model_path
from decoderlens.logic.analysis import LogicAnalysis, analyze
from decoderlens.logic.data import SPLITS, LogicExample, generate_examples, write_jsonl
from decoderlens.logic.tables import analysis_tables
from decoderlens.presentation.report import write_report
from decoderlens.presentation.tables import fitted_tables, summary_tables
from decoderlens.results import ExampleReadouts, LayerReadout, LensOutput
from decoderlens.settings import GenerationSettings

SHIPPED_NAME = "decoderlens/logic-model"


def held_out_examples(count: int, seed: int = 0, target: str = "minimal") -> list[LogicExample]:
    """The first ``count`` formulas of the seeded test split (never seen in training), with targets of kind
    ``target``."""
    offset, _ = SPLITS["test"]
    return generate_examples(count, seed=seed * 1000 + offset, prefix="test-", target=target)


def trained_target(model_path: Path) -> str:
    """The kind of target a logic model folder was trained on (its ``training_config.json``; else minimal)."""
    config = model_path / "training_config.json"
    if not config.is_file():
        return "minimal"
    return str(json.loads(config.read_text(encoding="utf-8")).get("target", "minimal"))


def readouts_from_folder(folder: EvalFolder, examples: list[LogicExample], model: str, num_layers: int) -> LensOutput:
    """Rebuild a ``LensOutput`` for ``examples`` from an evaluation folder's readouts."""
    by_id: dict[str, list[LayerReadout]] = {}
    for record in folder.records():
        by_id.setdefault(record.id, []).append(record.readout())
    rows = [ExampleReadouts(e.formula, sorted(by_id[e.id], key=lambda r: r.layer)) for e in examples if e.id in by_id]
    return LensOutput(model, num_layers, rows)


def run_demo(out_dir: Path, count: int = 300, console: Console | None = None, model_path: Path | None = None,
             fresh: bool = False, num_beams: int = 1) -> LogicAnalysis:
    """Read out all layers of the shipped model on ``count`` held-out formulas; print and write results.

    An earlier run in ``out_dir`` is reused (and extended to ``count`` formulas); ``fresh`` starts afresh.
    """
    console = console or Console()
    path = model_path or shipped_model_path()
    folder = EvalFolder(out_dir)
    if fresh and out_dir.exists():
        shutil.rmtree(out_dir)
    elif folder.read_settings() is not None:
        console.print(f"reusing the earlier run in {out_dir}/ (pass --fresh to start afresh)", highlight=False)
    lens = DecoderLens.from_pretrained(str(path), device="cpu", name=SHIPPED_NAME if model_path is None else str(path))
    examples = held_out_examples(count, target=trained_target(path))
    data = out_dir / "data" / "heldout.jsonl"
    write_jsonl(examples, data)
    settings = EvalSettings(model=lens.name, data=DataSource(str(data), input_field="formula", target_field="target"),
                            preset="logic", generation=GenerationSettings(max_new_tokens=16, num_beams=num_beams,
                                                                     token_scores=True))
    summary = evaluate(settings, out_dir, lens=lens).summary
    wanted = {e.id for e in examples}
    analysis = analyze(examples, readouts_from_folder(folder, [e for e in examples if e.id in wanted], lens.name,
                                                      lens.num_layers))
    atomic_write_text(out_dir / "logic_analysis.json", json.dumps(asdict(analysis), indent=2))
    tables = analysis_tables(analysis)
    folder.write_tables(tables)
    report = write_report(out_dir)
    for rich_table in summary_tables(summary, console.width):
        console.print(rich_table)
    for table in tables:
        for rich_table in fitted_tables(table.title, [(table.columns[0], [r[0] for r in table.rows])],
                                        [(c, [r[i + 1] for r in table.rows]) for i, c in enumerate(table.columns[1:])],
                                        console.width, table.caption):
            console.print(rich_table)
    console.print(f"results in {out_dir}/ (readouts.jsonl, summary.json, summary.csv, logic_analysis.json); open "
                  f"{report} in a browser to see every layer's readouts", highlight=False)
    return analysis
