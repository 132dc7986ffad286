"""A self-contained HTML report of a run: metric curves, readout grid, score heatmaps, token emergence."""

from __future__ import annotations

import html
import json
from collections import defaultdict
from importlib.resources import files
from pathlib import Path
from typing import Any

from decoderlens.errors import InputError
from decoderlens.results import LensOutput, atomic_write_text

TEMPLATE = "report_template.html"


def token_emergence(outputs: list[str]) -> list[dict[str, Any]]:
    """For each token of the top layer's output (the last entry), the first layer index from which the
    token stands at the same position in every higher layer's output."""
    split = [o.split() for o in outputs]
    top = split[-1]
    result = []
    for position, token in enumerate(top):
        first = len(split) - 1
        for index in range(len(split) - 1, -1, -1):
            if position < len(split[index]) and split[index][position] == token:
                first = index
            else:
                break
        result.append({"token": token, "from": first})
    return result


def read_eval_folder(folder: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The readout records and summary of an evaluation folder."""
    readouts, summary = folder / "readouts.jsonl", folder / "summary.json"
    if not readouts.exists():
        raise InputError(f"{folder} has no readouts.jsonl: run `decoderlens eval ... --out {folder}` first")
    records = [json.loads(line) for line in readouts.read_text(encoding="utf-8").splitlines() if line.strip()]
    info = json.loads(summary.read_text(encoding="utf-8")) if summary.exists() else {}
    return records, info


ExampleLayerScores = dict[tuple[str, int], dict[str, float]]


def _per_example_scores(records: list[dict[str, Any]], summary: dict[str, Any]) -> ExampleLayerScores:
    """Per (example, layer) values of the summary's mean-type metrics (used for filtering)."""
    from decoderlens.evaluation.metrics import get_metric, get_normalizer

    normalize = get_normalizer(str(summary.get("normalize", "none")))
    values: ExampleLayerScores = defaultdict(dict)
    for name in summary.get("metrics", {}):
        try:
            metric = get_metric(name)
        except InputError:
            continue
        preds = [normalize(r["output"]) for r in records]
        refs = [normalize(r.get("reference", "")) for r in records]
        stats = metric.stats(preds, refs, [r["input"] for r in records])
        if stats.shape[1] != 2 or not metric.higher_is_better:
            continue  # corpus-level statistics (BLEU, WER) say little about one example
        for record, row in zip(records, stats, strict=True):
            values[(str(record["id"]), record["layer"])][name] = float(row[0] / row[1]) if row[1] else 0.0
    return values


def build_payload(records: list[dict[str, Any]], summary: dict[str, Any], title: str) -> dict[str, Any]:
    """Everything the page shows, as plain JSON."""
    by_id: dict[str, list[dict[str, Any]]] = defaultdict(list)
    order: list[str] = []
    for record in records:
        key = str(record["id"])
        if key not in by_id:
            order.append(key)
        by_id[key].append(record)
    layers = sorted({r["layer"] for r in records})
    scores = _per_example_scores(records, summary) if summary else {}
    examples = []
    for key in order:
        rows = sorted(by_id[key], key=lambda r: r["layer"])
        outputs = [r["output"] for r in rows]
        example = {"id": key, "input": rows[0]["input"], "reference": rows[0].get("reference"),
                   "layers": [r["layer"] for r in rows], "outputs": outputs,
                   "scores": [scores.get((key, r["layer"]), {}) for r in rows],
                   "emergence": token_emergence(outputs)}
        if "token_logprobs" in rows[0]:
            example["target_tokens"] = rows[0]["target_tokens"]
            example["token_logprobs"] = [r["token_logprobs"] for r in rows]
        examples.append(example)
    from decoderlens import __version__

    return {"title": title, "version": __version__, "layers": layers,
            "num_encoder_layers": summary.get("num_encoder_layers", max(layers) if layers else 0),
            "summary": summary.get("layers", []), "metrics": summary.get("metrics", {}),
            "settings": summary.get("settings", {}), "examples": examples}


def render_html(payload: dict[str, Any]) -> str:
    """The report page: one file with inline CSS, JS and data, no network access."""
    template = (files("decoderlens.presentation") / TEMPLATE).read_text(encoding="utf-8")
    data = json.dumps(payload, ensure_ascii=False).replace("</", "<\\/").replace("<!--", "<\\!--")
    return template.replace("__TITLE__", html.escape(payload["title"])).replace("__DATA__", data)


def write_report(folder: Path, output: Path | None = None) -> Path:
    """Render the report of an evaluation folder (default: ``folder/report.html``)."""
    records, summary = read_eval_folder(folder)
    target = output or folder / "report.html"
    title = f"DecoderLens: {summary.get('model', folder.name)}"
    atomic_write_text(target, render_html(build_payload(records, summary, title)))
    return target


def lens_output_payload(output: LensOutput) -> dict[str, Any]:
    """The report payload of an ad-hoc run (no references, no metrics)."""
    records = [{"id": str(i), "layer": r.layer, "input": ex.input, "output": r.text}
               for i, ex in enumerate(output) for r in ex.readouts]
    summary = {"num_encoder_layers": output.num_encoder_layers, "settings": output.settings}
    return build_payload(records, summary, f"DecoderLens: {output.model}")


def write_lens_output_html(output: LensOutput, target: Path) -> Path:
    """Write the grid/emergence view of an ad-hoc run."""
    atomic_write_text(target, render_html(lens_output_payload(output)))
    return target


def static_table_html(output: LensOutput) -> str:
    """A script-free HTML table of a run, for notebooks (``_repr_html_``)."""
    parts = ['<table class="decoderlens"><thead><tr><th>input</th><th>layer</th><th>readout</th></tr></thead><tbody>']
    for example in output:
        for index, readout in enumerate(example.readouts):
            first = (f'<td rowspan="{len(example.readouts)}" dir="auto">{html.escape(example.input)}</td>'
                     if index == 0 else "")
            top = " style=\"font-weight:bold\"" if readout.layer == output.num_encoder_layers else ""
            parts.append(f"<tr>{first}<td{top}>{readout.layer}</td><td dir=\"auto\"{top}>"
                         f"{html.escape(readout.text)}</td></tr>")
    parts.append("</tbody></table>")
    return "".join(parts)
