"use strict";
/* Shared drawing code of the DecoderLens pages (the static report and the live explorer). No network, no
   libraries: plain DOM and SVG. Every function takes the data it draws; nothing here reads globals. */
const Lens = (() => {
  const PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"];

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined) continue;
      if (key === "class") node.className = value; else node.setAttribute(key, value);
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function svg(tag, attrs) {
    const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
    return node;
  }

  function fmt(v) {
    if (v === null || v === undefined || Number.isNaN(v)) return "–";
    const a = Math.abs(v);
    return a >= 100 ? v.toFixed(0) : a >= 10 ? v.toFixed(1) : a >= 1 ? v.toFixed(2) : v.toFixed(3);
  }

  function plural(n, word) { return `${n} ${word}${n === 1 ? "" : "s"}`; }

  /* Round tick values covering [lo, hi]: steps of 1, 2, 2.5 or 5 times a power of ten. */
  function niceTicks(lo, hi, count) {
    if (!(hi > lo)) { const pad = Math.abs(lo) > 0 ? Math.abs(lo) * 0.1 : 1; lo -= pad; hi += pad; }
    const raw = (hi - lo) / Math.max(1, count - 1);
    const power = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 2.5, 5, 10].map(m => m * power).find(s => s >= raw);
    const first = Math.floor(lo / step) * step, last = Math.ceil(hi / step) * step;
    const ticks = [];
    for (let v = first; v <= last + step / 2; v += step) ticks.push(Number(v.toPrecision(12)));
    return ticks;
  }

  function tickLabel(v, ticks) {
    const step = ticks.length > 1 ? Math.abs(ticks[1] - ticks[0]) : 1;
    let digits = 0;
    while (digits < 6 && Math.abs(Math.round(step * 10 ** digits) - step * 10 ** digits) > 1e-9) digits++;
    return v.toFixed(digits);
  }

  /* One panel per metric; each series ({label, rows: [{layer, metrics: {name: {value, low, high}}}]}) is a
     line with its confidence band. Rates (bounds [0, 1]) get a [0, 1] axis. */
  function drawCurves(box, series, metrics, options) {
    const opts = options || {};
    const names = Object.keys(metrics).filter(name => series.some(s => s.rows.some(r => r.metrics && r.metrics[name])));
    box.replaceChildren();
    names.forEach((name, index) => {
      const info = metrics[name] || {};
      const W = 360, H = 214, L = 46, R = 12, T = 12, B = 36;
      const all = series.flatMap(s => s.rows.filter(r => r.metrics[name]));
      if (!all.length) return;
      const xs = [...new Set(all.map(r => r.layer))].sort((a, b) => a - b);
      const rate = info.bounds && info.bounds[0] === 0 && info.bounds[1] === 1;
      let ticks;
      if (rate) ticks = [0, 0.25, 0.5, 0.75, 1];
      else {
        const lows = all.map(r => r.metrics[name].low), highs = all.map(r => r.metrics[name].high);
        ticks = niceTicks(Math.min(...lows), Math.max(...highs), 5);
      }
      const ymin = ticks[0], ymax = ticks[ticks.length - 1];
      const xmin = xs[0], xmax = xs.length > 1 ? xs[xs.length - 1] : xmin + 1;
      const X = x => L + (x - xmin) / (xmax - xmin) * (W - L - R);
      const Y = y => T + (1 - (y - ymin) / (ymax - ymin)) * (H - T - B);
      const plot = svg("svg", {viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": `${name} per encoder layer`});
      ticks.forEach(y => {
        plot.append(svg("line", {x1: L, x2: W - R, y1: Y(y), y2: Y(y), stroke: "#e3e7ee"}));
        const label = svg("text", {x: L - 6, y: Y(y) + 4, "text-anchor": "end", "font-size": 10, fill: "#5b6577"});
        label.textContent = tickLabel(y, ticks); plot.append(label);
      });
      const every = Math.max(1, Math.ceil(xs.length / 12));
      xs.forEach((x, i) => {
        if (i % every && i !== xs.length - 1) return;
        const label = svg("text", {x: X(x), y: H - B + 16, "text-anchor": "middle", "font-size": 10, fill: "#5b6577"});
        label.textContent = x; plot.append(label);
      });
      const axis = svg("text", {x: (L + W - R) / 2, y: H - 4, "text-anchor": "middle", "font-size": 11, fill: "#5b6577"});
      axis.textContent = opts.xLabel || "encoder layer"; plot.append(axis);
      series.forEach((s, si) => {
        const rows = s.rows.filter(r => r.metrics[name]).sort((a, b) => a.layer - b.layer);
        if (!rows.length) return;
        const color = series.length > 1 ? PALETTE[si % PALETTE.length] : PALETTE[index % PALETTE.length];
        const est = rows.map(r => r.metrics[name]);
        const band = rows.map((r, i) => `${X(r.layer)},${Y(est[i].high)}`)
          .concat(rows.map((r, i) => `${X(r.layer)},${Y(est[i].low)}`).reverse());
        plot.append(svg("polygon", {points: band.join(" "), fill: color, "fill-opacity": 0.16, stroke: "none"}));
        plot.append(svg("polyline", {points: rows.map((r, i) => `${X(r.layer)},${Y(est[i].value)}`).join(" "),
          fill: "none", stroke: color, "stroke-width": 2, "stroke-dasharray": s.dashed ? "5 3" : "none"}));
        rows.forEach((r, i) => {
          const dot = svg("circle", {cx: X(r.layer), cy: Y(est[i].value), r: 3, fill: color});
          const tip = svg("title", {});
          tip.textContent = `${s.label ? s.label + ", " : ""}layer ${r.layer}: ${fmt(est[i].value)} ` +
            `[${fmt(est[i].low)}, ${fmt(est[i].high)}]`;
          dot.append(tip); plot.append(dot);
        });
      });
      const title = el("h3", {title: info.signature || null}, name);
      const panel = el("div", {class: "panel"}, title, plot);
      if (info.description) panel.append(el("div", {class: "sub caption"}, info.description));
      box.append(panel);
    });
    if (series.length > 1) {
      const legend = el("div", {class: "legend"});
      series.forEach((s, si) => legend.append(el("span", {style: `--c:${PALETTE[si % PALETTE.length]}`}, s.label)));
      box.prepend(legend);
    }
    return names.length;
  }

  /* Output text with its tokens marked where they agree with the top layer (same position) or the reference. */
  function tokens(text, top, reference) {
    const span = el("span", {class: "text", dir: "auto"});
    if (!text) { span.append(el("span", {class: "empty"}, "(empty)")); return span; }
    const topTokens = (top || "").split(/\s+/);
    const refTokens = new Set((reference || "").split(/\s+/).filter(Boolean));
    text.split(/(\s+)/).forEach((piece, index) => {
      if (!piece.trim()) { span.append(piece); return; }
      const t = topTokens[index / 2] === piece, r = refTokens.has(piece);
      span.append(t || r ? el("span", {class: "tok " + (t && r ? "tr" : t ? "t" : "r")}, piece) : piece);
    });
    return span;
  }

  function heatmap(example, layerSet) {
    const wrap = el("div", {class: "heat"});
    const table = el("table", {});
    const head = el("tr", {}, el("th", {}, "layer"));
    example.target_tokens.forEach(tok => head.append(el("th", {dir: "auto"}, tok)));
    table.append(head);
    example.layers.forEach((layer, i) => {
      if (layerSet && !layerSet.has(layer)) return;
      const row = el("tr", {}, el("th", {}, layer));
      example.token_logprobs[i].forEach(lp => {
        const p = Math.exp(lp);
        const cell = el("td", {title: `log-prob ${lp.toFixed(3)} (p = ${p.toFixed(3)})`}, lp.toFixed(1));
        cell.style.background = `rgba(0, 114, 178, ${Math.min(1, p).toFixed(3)})`;
        cell.style.color = p > 0.55 ? "#fff" : "#1d2330";
        row.append(cell);
      });
      table.append(row);
    });
    wrap.append(el("div", {class: "sub"}, "Teacher-forced log-probability of each reference token (darker = more likely)"), table);
    return wrap;
  }

  /* One example: its input and reference, then a row per layer (layers x output grid). */
  function renderExample(example, top, layerSet) {
    const topIndex = example.layers.indexOf(top);
    const topText = topIndex >= 0 ? example.outputs[topIndex] : example.outputs[example.outputs.length - 1];
    const head = el("div", {class: "example-head"}, example.id !== undefined ? el("div", {class: "id"}, `example ${example.id}`) : null,
      el("div", {class: "field"}, el("b", {}, "input"), el("div", {class: "text", dir: "auto"}, example.input)));
    if (example.reference !== undefined && example.reference !== null) {
      head.append(el("div", {class: "field"}, el("b", {}, "reference"), el("div", {class: "text", dir: "auto"}, example.reference)));
    }
    const table = el("table", {class: "grid"});
    const scores = example.scores || [];
    const metricNames = Object.keys(scores[0] || {});
    table.append(el("tr", {}, el("th", {class: "layer"}, "layer"), el("th", {}, "readout"),
      metricNames.length ? el("th", {class: "score"}, metricNames.join(" / ")) : null));
    example.layers.forEach((layer, i) => {
      if (layerSet && !layerSet.has(layer)) return;
      const label = example.labels ? example.labels[i] : (layer === top ? `${layer} (top)` : String(layer));
      const row = el("tr", {class: layer === top ? "top" : "", "data-layer": layer},
        el("td", {class: "layer"}, label), el("td", {class: "readout"}, tokens(example.outputs[i], topText, example.reference)));
      if (metricNames.length) row.append(el("td", {class: "score"}, metricNames.map(n => fmt(scores[i][n])).join(" / ")));
      table.append(row);
    });
    const card = el("article", {class: "example", "data-id": example.id}, head, table);
    if (example.emergence && example.emergence.length) {
      const chips = el("div", {class: "emergence"}, el("b", {class: "sub"}, "token emergence:"));
      example.emergence.forEach(e => chips.append(el("span", {class: "chip", dir: "auto"}, e.token,
        el("small", {}, `from layer ${e.layer ?? example.layers[e.from]}`))));
      card.append(chips);
    }
    if (example.token_logprobs) card.append(heatmap(example, layerSet));
    if (example.grid) card.append(drawHeatmap(example.grid));
    return card;
  }

  /* A matrix as a coloured table ({title, caption, rows, columns, rowLabel, columnLabel, values, digits}):
     darker is higher; each cell's exact value is in its tooltip. */
  function drawHeatmap(spec) {
    const flat = spec.values.flat().filter(v => v !== null && !Number.isNaN(v));
    const lo = Math.min(...flat), hi = Math.max(...flat);
    const table = el("table", {class: "heatmap"});
    table.append(el("tr", {}, el("th", {}, `${spec.rowLabel} \\ ${spec.columnLabel}`),
      ...spec.columns.map(c => el("th", {}, c))));
    spec.values.forEach((row, i) => {
      const tr = el("tr", {}, el("th", {}, spec.rows[i]));
      row.forEach((v, j) => {
        const share = hi > lo ? (v - lo) / (hi - lo) : 1;
        const cell = el("td", {title: `${spec.rowLabel} ${spec.rows[i]}, ${spec.columnLabel} ${spec.columns[j]}: ${v}`},
          v === null ? "–" : v.toFixed(spec.digits ?? 2));
        cell.style.background = `rgba(0, 114, 178, ${(0.08 + 0.92 * share).toFixed(3)})`;
        cell.style.color = share > 0.55 ? "#fff" : "#1d2330";
        tr.append(cell);
      });
      table.append(tr);
    });
    return el("div", {class: "heat"}, spec.title ? el("h3", {}, spec.title) : null,
      spec.caption ? el("div", {class: "sub"}, spec.caption) : null, table);
  }

  /* Tables of an analysis ({title, caption, columns, rows}). */
  function renderTables(box, tables) {
    box.replaceChildren();
    (tables || []).forEach(t => {
      const table = el("table", {class: "analysis"});
      table.append(el("tr", {}, ...t.columns.map(c => el("th", {}, c))));
      t.rows.forEach(r => table.append(el("tr", {}, ...r.map(c => el("td", {}, c)))));
      box.append(el("div", {class: "panel wide"}, el("h3", {}, t.title), table, t.caption ? el("div", {class: "sub caption"}, t.caption) : null));
    });
    return (tables || []).length;
  }

  /* A section of an analysis ({title, caption, heatmaps, tables}): the 2-D lens, a trace. */
  function renderSection(section) {
    const part = el("section", {class: "analysis-section"}, el("h2", {dir: "auto"}, section.title));
    if (section.caption) part.append(el("div", {class: "sub", dir: "auto"}, section.caption));
    (section.heatmaps || []).forEach(spec => part.append(el("div", {class: "panel wide"}, drawHeatmap(spec))));
    const tables = el("div", {class: "panels"});
    if (renderTables(tables, section.tables)) part.append(tables);
    return part;
  }

  return {PALETTE, el, svg, fmt, plural, niceTicks, drawCurves, tokens, heatmap, drawHeatmap, renderExample,
    renderTables, renderSection};
})();
