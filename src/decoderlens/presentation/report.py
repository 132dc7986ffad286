"""Self-contained HTML pages of runs: metric curves, readout grid, score heatmaps, token emergence, analyses.

The pages share their drawing code (``assets/lens.js``, ``assets/lens.css``) with the live explorer; data
goes into the page as JSON that no text in the data can break out of.
"""

from __future__ import annotations

import html
import json
from collections import defaultdict
from dataclasses import asdict
from importlib.resources import files
from pathlib import Path
from typing import Any

from decoderlens.attribution.output import AttributionOutput, ExampleAttribution
from decoderlens.errors import InputError
from decoderlens.evaluation.compare import Comparison
from decoderlens.evaluation.folder import AnalysisTable, EvalFolder, GridRecord, MetricInfo, ReadoutRecord, Summary
from decoderlens.evaluation.metrics import get_metric, get_normalizer
from decoderlens.fileio import atomic_write_text
from decoderlens.presentation.attribution_view import attribution_view
from decoderlens.presentation.numbers import number
from decoderlens.presentation.style import LENS_NAMES, axis_label, lens_key, page_style, series_color
from decoderlens.results import GridOutput, LensOutput, ScoreOutput, TraceOutput
from decoderlens.version import __version__

GENERIC_FOLDER_NAMES = {"model", "models", "final", "best", "output", "outputs"}


def asset(name: str) -> str:
    """The text of one of the pages' shared files (``lens.js``, ``lens.css``, page shells)."""
    return (files("decoderlens.presentation") / "assets" / name).read_text(encoding="utf-8")


def script_json(data: Any) -> str:
    """JSON for a ``<script type="application/json">`` block: ``<``, ``>`` and ``&`` are written as JSON escapes,
    so no text in the data (``</script>``, ``<!--``) can end or alter the block, and the JSON stays valid."""
    return (json.dumps(data, ensure_ascii=False).replace("<", "\\u003c").replace(">", "\\u003e")
            .replace("&", "\\u0026").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def render_page(name: str, payload: dict[str, Any]) -> str:
    """Page ``name`` (its body ``NAME.body.html`` and script ``NAME.js``) in the shared shell, with the shared
    CSS and JS and ``payload`` inlined: one file, no network access."""
    parts = {"__CSS__": asset("lens.css"), "__JS__": asset("lens.js"), "__BODY__": asset(f"{name}.body.html"),
             "__PAGE_JS__": asset(f"{name}.js"), "__TITLE__": html.escape(str(payload.get("title", "DecoderLens")))}
    page = asset("page.html")
    for marker, text in parts.items():
        page = page.replace(marker, text, 1)
    return page.replace("__DATA__", script_json(payload), 1)


def display_name(model: str) -> str:
    """A model's name for titles: Hub names as they are, local folders by their own name, not their path."""
    path = Path(model)
    if not (model.startswith((".", "/", "~")) or path.exists()) or len(path.parts) < 2:
        return model
    if path.name.lower() in GENERIC_FOLDER_NAMES or path.name.startswith("checkpoint"):
        return f"{path.parent.name}/{path.name}"
    return path.name


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


ExampleLayerScores = dict[tuple[str, int, str | None], dict[str, float]]


def per_example_scores(records: list[ReadoutRecord], summary: Summary | None) -> ExampleLayerScores:
    """Per (example, layer, lens) values of the summary's rate metrics (shown per row, used to filter examples)."""
    values: ExampleLayerScores = defaultdict(dict)
    if summary is None:
        return values
    normalize = get_normalizer(summary.normalize)
    for name, info in summary.metrics.items():
        if info.bounds != [0.0, 1.0] or not info.higher_is_better:
            continue  # corpus-level statistics (BLEU, WER) say little about one example
        try:
            metric = get_metric(name)
        except InputError:
            continue
        preds = [normalize(r.output) for r in records]
        refs = [normalize(r.reference or "") for r in records]
        stats = metric.stats(preds, refs, [r.input for r in records])
        for record, row in zip(records, stats, strict=True):
            values[(record.id, record.layer, record.lens)][name] = float(row[0] / row[1]) if row[1] else 0.0
    return values


def heatmap_spec(values: list[list[float]], rows: list[int], columns: list[Any], title: str = "",
                 caption: str = "", row_label: str = "encoder layer", column_label: str = "decoder layer",
                 digits: int = 2) -> dict[str, Any]:
    """A matrix for the pages' heatmap drawing (``Lens.drawHeatmap``)."""
    return {"title": title, "caption": caption, "rows": rows, "columns": columns, "rowLabel": row_label,
            "columnLabel": column_label, "values": [[round(v, 4) for v in row] for row in values], "digits": digits}


def grid_specs(summary: Summary | None, grids: list[GridRecord]) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """The data set's mean 2-D lens and each example's, as heatmaps."""
    per_example = {g.id: heatmap_spec(g.logprob, g.encoder_layers, list(range(1, len(g.logprob[0]) + 1)),
                                      "2-D lens", "log-probability of the reference") for g in grids}
    if summary is None or not summary.grid:
        return None, per_example
    rows = sorted({c.encoder_layer for c in summary.grid})
    columns = sorted({c.decoder_layer for c in summary.grid})
    value = {(c.encoder_layer, c.decoder_layer): c.logprob.value for c in summary.grid}
    mean = heatmap_spec([[value[(e, d)] for d in columns] for e in rows], rows, columns,
                        "Mean log-probability of the reference", "Every cell reads the reference through one encoder "
                        "layer (rows) and one decoder layer (columns; the last is the model's real output, lower ones "
                        "its intermediate states through the decoder's final norm and head). 95% intervals are in "
                        "summary.json.")
    return mean, per_example


def metric_payload(metrics: dict[str, MetricInfo]) -> dict[str, Any]:
    """The pages' view of a summary's metrics: what the summary says, plus the y-axis label with its unit."""
    return {name: {**asdict(info), "axis": axis_label(name, info.bounds, info.higher_is_better)}
            for name, info in metrics.items()}


def build_payload(records: list[ReadoutRecord], summary: Summary | None, title: str,
                  tables: list[AnalysisTable] | None = None, num_layers: int | None = None,
                  settings: dict[str, Any] | None = None, grids: list[GridRecord] | None = None,
                  attributions: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Everything a report page shows, as plain JSON. With raw and tuned lenses, each layer below the top has a
    row per lens (raw first), each with its own metrics. ``attributions``: per example id, where each layer looks
    (``attribution_view``)."""
    mean_grid, example_grids = grid_specs(summary, grids or [])
    by_id: dict[str, list[ReadoutRecord]] = defaultdict(list)
    for record in records:
        by_id[record.id].append(record)
    layers = sorted({r.layer for r in records})
    scores = per_example_scores(records, summary)
    both = bool(summary and summary.raw_layers)
    main_lens = "tuned" if both else lens_key(summary.settings if summary else settings or {})
    top = summary.num_encoder_layers if summary else (num_layers if num_layers is not None else max(layers, default=0))
    examples = []
    for key, rows in by_id.items():
        rows.sort(key=lambda r: (r.layer, r.lens is None))
        own = [r.output for r in rows if r.lens is None]
        example: dict[str, Any] = {"id": key, "input": rows[0].input, "reference": rows[0].reference,
                                   "layers": [r.layer for r in rows], "outputs": [r.output for r in rows],
                                   "lenses": [r.lens or main_lens for r in rows],
                                   "scores": [scores.get((key, r.layer, r.lens), {}) for r in rows],
                                   "emergence": [{**e, "layer": [r.layer for r in rows if r.lens is None][e["from"]]}
                                                 for e in token_emergence(own)]}
        if both:
            example["labels"] = [f"{r.layer} (top)" if r.layer == top else f"{r.layer} {r.lens or main_lens}"
                                 for r in rows]
        if any(r.logprobs is not None for r in rows):
            example["tokens"] = [r.tokens or [] for r in rows]
            example["logprobs"] = [r.logprobs or [] for r in rows]
            example["entropies"] = [r.entropies or [] for r in rows]
        scored = [r for r in rows if r.token_logprobs is not None]
        if scored:  # aligned with every row; the raw lens's rows beside the tuned ones have none
            example["target_tokens"] = scored[0].target_tokens
            example["token_logprobs"] = [r.token_logprobs for r in rows]
            example["token_ranks"] = [r.token_ranks for r in rows]
        if key in example_grids:
            example["grid"] = example_grids[key]
        if attributions and key in attributions:
            example["attribution"] = attributions[key]
        examples.append(example)
    series = []
    if summary is not None:
        for lens, entries in summary.lens_curves:
            name = lens or main_lens
            series.append({"key": name, "label": LENS_NAMES[name], "color": series_color(name),
                           "dashed": name == "tuned", "rows": [asdict(e) for e in entries]})
    return {"title": title, "version": __version__, "layers": layers, "num_encoder_layers": top,
            "style": page_style(), "series": series, "metrics": metric_payload(summary.metrics) if summary else {},
            "settings": summary.settings if summary else settings or {}, "tables": [asdict(t) for t in tables or []],
            "grid": mean_grid, "examples": examples}


def write_report(folder: Path, output: Path | None = None) -> Path:
    """Render the report of an evaluation folder (default: ``folder/report.html``)."""
    store = EvalFolder(folder)
    records = store.require_records()
    summary = store.summary()
    model = summary.model if summary else str((store.read_settings() or {}).get("model", folder.name))
    target = output or folder / "report.html"
    views = {key: attribution_view(ExampleAttribution.from_dict(r["example"]), r["method"])
             for key, r in store.attribution_records().items()}
    payload = build_payload(records, summary, f"DecoderLens: {display_name(model)}", store.tables(),
                            grids=store.grid_records(), attributions=views)
    atomic_write_text(target, render_page("report", payload))
    return target


def lens_output_payload(output: LensOutput, attributions: AttributionOutput | None = None) -> dict[str, Any]:
    """The report payload of an ad-hoc run (no references, no metrics), with where each layer looks where
    ``attributions`` are given."""
    records = [ReadoutRecord.of(str(i), ex.input, r) for i, ex in enumerate(output) for r in ex.readouts]
    views = None if attributions is None else {
        str(i): attribution_view(example, attributions.method) for i, example in enumerate(attributions)}
    return build_payload(records, None, f"DecoderLens: {display_name(output.model)}",
                         num_layers=output.num_encoder_layers, settings=output.settings, attributions=views)


def write_compare_html(comparison: Comparison, info: dict[str, MetricInfo], tables: list[AnalysisTable],
                       target: Path) -> Path:
    """The comparison page: both runs' curves, the paired differences, and the examples that differ most."""
    names = {"a": display_name(comparison.a), "b": display_name(comparison.b)}
    payload = {"title": f"DecoderLens: {names['b']} against {names['a']}", "version": __version__, "names": names,
               "style": page_style(), "comparison": comparison.to_dict(), "metrics": metric_payload(info),
               "tables": [asdict(t) for t in tables]}
    atomic_write_text(target, render_page("compare", payload))
    return target


def write_analysis_html(title: str, subtitle: str, sections: list[dict[str, Any]], target: Path) -> Path:
    """A page of analysis sections (``{title, caption, heatmaps, tables}``): the 2-D lens, causal traces."""
    payload = {"title": title, "subtitle": subtitle, "version": __version__, "sections": sections}
    atomic_write_text(target, render_page("analysis", payload))
    return target


def grid_sections(output: GridOutput) -> list[dict[str, Any]]:
    """One section per example of a 2-D lens: its log-probability heatmap, and the top-1 tokens at the top
    encoder layer by decoder layer."""
    sections = []
    for example in output:
        rows = sorted({c.encoder_layer for c in example.cells})
        columns = sorted({c.decoder_layer for c in example.cells})
        tokens = AnalysisTable("Top token at each position, top encoder layer, by decoder layer",
                               ["decoder layer", *example.tokens],
                               [[str(d), *example.cell(rows[-1], d).top_tokens] for d in columns])
        sections.append({"title": f"{example.input}  →  {example.target}",
                         "heatmaps": [heatmap_spec(example.matrix(), rows, columns, "Log-probability of the target")],
                         "tables": [asdict(tokens)]})
    return sections


def score_views(output: ScoreOutput) -> list[dict[str, Any]]:
    """Each example's teacher-forced scores as the pages draw them (``Lens.heatmap``: layers x target tokens), the
    same keys the report's examples carry."""
    return [{"input": example.input, "reference": example.target, "layers": [s.layer for s in example.layers],
             "target_tokens": [t.token for t in example.layers[0].tokens] if example.layers else [],
             "token_logprobs": [[round(t.logprob, 4) + 0.0 for t in s.tokens] for s in example.layers],
             "token_ranks": [[t.rank for t in s.tokens] for s in example.layers]}
            for example in output]


def trace_sections(trace: TraceOutput) -> list[dict[str, Any]]:
    """A causal trace as a heatmap: encoder layers x positions (or one column when every position was
    restored at once)."""
    layers = list(range(len(trace.restored)))
    values = trace.restored
    columns = trace.tokens if values and len(values[0]) == len(trace.tokens) else ["all positions"]
    caption = (f"Probability of the answer {trace.answer!r} when the clean state of an encoder layer (rows; window "
               f"{trace.window}) at one position (columns) is restored in the corrupted run ({trace.corruption}). "
               f"Clean run: {number(trace.clean_prob)}; corrupted run: {number(trace.corrupt_prob)}.")
    return [{"title": trace.input, "caption": caption,
             "heatmaps": [heatmap_spec(values, layers, columns, "Restored probability", "", "encoder layer",
                                       "position", 3)]}]


def write_lens_output_html(output: LensOutput, target: Path, attributions: AttributionOutput | None = None) -> Path:
    """Write the grid/emergence view of an ad-hoc run (with where each layer looks, where ``attributions`` are
    given)."""
    atomic_write_text(target, render_page("report", lens_output_payload(output, attributions)))
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
