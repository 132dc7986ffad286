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

  /* Numbers by the house rule (presentation/numbers.py): 3 decimals where nothing shown together is above 1,
     else 3 significant digits of the largest; never "-0". */
  function decimals(...values) {
    const largest = Math.max(0, ...values.filter(v => v !== null && v !== undefined && Number.isFinite(v)).map(Math.abs));
    return largest <= 1 ? 3 : Math.max(0, 2 - Math.floor(Math.log10(largest)));
  }
  function fixed(v, places) {
    if (v === null || v === undefined || Number.isNaN(v)) return "–";
    const text = v.toFixed(places);
    return /^-0(\.0*)?$/.test(text) ? text.slice(1) : text;
  }
  function fmt(v) { return fixed(v, decimals(v)); }
  function interval(v, low, high) {
    const places = decimals(v, low, high);
    return `${fixed(v, places)} [${fixed(low, places)}, ${fixed(high, places)}]`;
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

  /* One panel per metric; each series ({label, color, dashed, rows: [{layer, metrics: {name: {value, low, high}}}]})
     is a line with its confidence band; a metric's chance level (info.baseline) is a grey dashed line. Rates
     (bounds [0, 1]) get a [0, 1] axis, other bounded metrics and error rates start at 0; the y axis is labelled
     with the metric's unit (info.axis), and every panel has its own legend. */
  function drawCurves(box, series, metrics, options) {
    const opts = options || {};
    const style = opts.style || {palette: PALETTE, chance: "#6b7280"};
    const names = Object.keys(metrics).filter(name => series.some(s => s.rows.some(r => r.metrics && r.metrics[name])));
    box.replaceChildren();
    names.forEach((name, index) => {
      const info = metrics[name] || {};
      const W = 360, H = 224, L = 58, R = 12, T = 12, B = 36;
      const all = series.flatMap(s => s.rows.filter(r => r.metrics[name]));
      if (!all.length) return;
      const xs = [...new Set(all.map(r => r.layer))].sort((a, b) => a - b);
      const rate = info.bounds && info.bounds[0] === 0 && info.bounds[1] === 1;
      const chance = typeof info.baseline === "number" && !opts.noChance ? info.baseline : null;
      let ticks;
      if (rate) ticks = [0, 0.25, 0.5, 0.75, 1];
      else {
        const lows = all.map(r => r.metrics[name].low), highs = all.map(r => r.metrics[name].high);
        if (chance !== null) { lows.push(chance); highs.push(chance); }
        const fromZero = !opts.free && (info.bounds || info.higher_is_better === false);
        ticks = niceTicks(fromZero ? 0 : Math.min(...lows), Math.max(...highs), 5);
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
      const yAxis = svg("text", {x: 0, y: 0, "text-anchor": "middle", "font-size": 10, fill: "#5b6577",
        transform: `translate(11 ${(T + H - B) / 2}) rotate(-90)`});
      yAxis.textContent = opts.yLabel || info.axis || name; plot.append(yAxis);
      const legend = el("div", {class: "legend small"});
      if (chance !== null) {
        plot.append(svg("line", {x1: L, x2: W - R, y1: Y(chance), y2: Y(chance), stroke: style.chance,
          "stroke-width": 1.4, "stroke-dasharray": "5 4", class: "chance"}));
        legend.append(el("span", {class: "dash", style: `--c:${style.chance}`,
          title: info.baseline_label || ""}, `chance ${fmt(chance)}`));
      }
      series.forEach((s, si) => {
        const rows = s.rows.filter(r => r.metrics[name]).sort((a, b) => a.layer - b.layer);
        if (!rows.length) return;
        const color = s.color || PALETTE[(series.length > 1 ? si : index) % PALETTE.length];
        const est = rows.map(r => r.metrics[name]);
        const band = rows.map((r, i) => `${X(r.layer)},${Y(est[i].high)}`)
          .concat(rows.map((r, i) => `${X(r.layer)},${Y(est[i].low)}`).reverse());
        plot.append(svg("polygon", {points: band.join(" "), fill: color, "fill-opacity": 0.16, stroke: "none"}));
        plot.append(svg("polyline", {points: rows.map((r, i) => `${X(r.layer)},${Y(est[i].value)}`).join(" "),
          fill: "none", stroke: color, "stroke-width": 2, "stroke-dasharray": s.dashed ? "5 3" : "none"}));
        rows.forEach((r, i) => {
          const dot = svg("circle", {cx: X(r.layer), cy: Y(est[i].value), r: 3, fill: color});
          const tip = svg("title", {});
          tip.textContent = `${s.label ? s.label + ", " : ""}layer ${r.layer}: ${interval(est[i].value, est[i].low, est[i].high)}`;
          dot.append(tip); plot.append(dot);
        });
        if (s.label) legend.append(el("span", {class: s.dashed ? "line dashed" : "line", style: `--c:${color}`}, s.label));
      });
      const title = el("h3", {title: info.signature || null}, name);
      const panel = el("div", {class: "panel"}, title, plot);
      if (legend.childNodes.length) panel.append(legend);
      if (info.description) panel.append(el("div", {class: "sub caption"}, info.description));
      box.append(panel);
    });
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
      if ((layerSet && !layerSet.has(layer)) || !example.token_logprobs[i]) return;
      const row = el("tr", {}, el("th", {}, layer));
      example.token_logprobs[i].forEach(lp => {
        const p = Math.exp(lp);
        const cell = el("td", {title: `log-prob ${fmt(lp)} (p = ${fmt(p)})`}, fixed(lp, 1));
        cell.style.background = `rgba(0, 114, 178, ${Math.min(1, p).toFixed(3)})`;
        cell.style.color = p > 0.55 ? "#fff" : "#1d2330";
        row.append(cell);
      });
      table.append(row);
    });
    wrap.append(el("div", {class: "sub"}, "Teacher-forced log-probability of each reference token (darker = more likely)"), table);
    return wrap;
  }

  /* How readout tokens are coloured: agreement with the top layer and the reference (words), the layer's
     probability of each token, the entropy each token was chosen from, or the rank each layer gives the reference's
     tokens. The last three need token scores (eval records them; --score for ranks). */
  const COLOURINGS = {
    agreement: "agreement with the top layer and the reference",
    probability: "probability of each token at its layer",
    entropy: "entropy of the distribution each token was chosen from",
    rank: "rank each layer gives the reference's tokens",
  };

  function tokenText(token) { return String(token).replace(/^[\u2581\u0120]/, " ").replace(/\u010a/g, "\n"); }

  /* One output as its tokens, each shaded by ``value`` (0..1) in ``rgb``, its tooltip from ``tip``; a word-level
     vocabulary (no space markers in its tokens, spaces in the text) gets a space between tokens. */
  function shadedTokens(tokensOf, shade, tip, rgb, text) {
    const span = el("span", {class: "text tokens", dir: "auto"});
    if (!tokensOf.length) { span.append(el("span", {class: "empty"}, "(empty)")); return span; }
    const spaced = /\s/.test(text || "") && !tokensOf.some(t => /^[\u2581\u0120]/.test(String(t)));
    tokensOf.forEach((token, i) => {
      if (spaced && i) span.append(" ");
      const v = Math.max(0, Math.min(1, shade(i)));
      const piece = el("span", {class: "tok shade", title: tip(i)}, tokenText(token));
      piece.style.background = `rgba(${rgb}, ${(0.06 + 0.88 * v).toFixed(3)})`;
      piece.style.color = v > 0.6 ? "#fff" : "#1d2330";
      span.append(piece);
    });
    return span;
  }

  function readoutCell(example, i, topText, mode) {
    const text = example.outputs[i];
    if (mode === "probability" && example.logprobs && example.logprobs[i]) {
      const lp = example.logprobs[i], h = example.entropies[i];
      return shadedTokens(example.tokens[i], k => Math.exp(lp[k]),
        k => `p = ${fmt(Math.exp(lp[k]))} (log-prob ${fmt(lp[k])}); entropy ${fmt(h[k])} nats`, "0, 114, 178", text);
    }
    if (mode === "entropy" && example.entropies && example.entropies[i]) {
      const lp = example.logprobs[i], h = example.entropies[i];
      const most = Math.max(1, ...example.entropies.flat());
      return shadedTokens(example.tokens[i], k => h[k] / most,
        k => `entropy ${fmt(h[k])} nats; p = ${fmt(Math.exp(lp[k]))}`, "213, 94, 0", text);
    }
    if (mode === "rank" && example.token_ranks && example.token_ranks[i]) {
      const ranks = example.token_ranks[i], lps = example.token_logprobs ? example.token_logprobs[i] : null;
      return shadedTokens(example.target_tokens, k => 1 / (1 + ranks[k]),
        k => `reference token ranked ${ranks[k]} (0 = this layer's top prediction)` +
          (lps ? `; log-prob ${fmt(lps[k])}` : ""), "0, 158, 115", example.reference);
    }
    if (mode && mode !== "agreement") {  // no scores for this row (e.g. the raw lens beside a tuned one)
      return el("span", {class: "text plain", dir: "auto", title: "no token scores recorded for this row"},
        text || "(empty)");
    }
    return tokens(text, topText, example.reference);
  }

  /* What each colouring can show for an example set: the modes whose data is there. */
  function colourings(examples) {
    const has = key => examples.some(ex => ex[key]);
    return Object.keys(COLOURINGS).filter(m => m === "agreement" || (m === "rank" ? has("token_ranks") : has("logprobs")));
  }

  /* The legend of a colouring. */
  function colourLegend(mode) {
    const legend = el("div", {class: "legend"});
    const entries = {
      agreement: [["#d6e9f6", "token also in the top layer's output at this position"], ["#fbe7c2", "token in the reference"],
        ["#cdeee3", "both"], ["#f1f7fc", "top (final) layer"]],
      probability: [["rgba(0,114,178,0.15)", "unlikely at its layer"], ["rgba(0,114,178,0.94)", "likely (p near 1)"]],
      entropy: [["rgba(213,94,0,0.15)", "sure (low entropy)"], ["rgba(213,94,0,0.94)", "unsure (the example's highest entropy)"]],
      rank: [["rgba(0,158,115,0.94)", "reference token is the layer's top prediction"],
        ["rgba(0,158,115,0.15)", "ranked low"]],
    }[mode] || [];
    entries.forEach(([c, label]) => legend.append(el("span", {style: `--c:${c}`}, label)));
    return legend;
  }

  /* One example: its input and reference, then a row per layer (and per lens, raw first), each with its readout
     coloured by ``mode`` and one column per metric. */
  function renderExample(example, top, layerSet, mode) {
    const topIndex = example.layers.indexOf(top);
    const topText = topIndex >= 0 ? example.outputs[topIndex] : example.outputs[example.outputs.length - 1];
    const head = el("div", {class: "example-head"}, example.id !== undefined ? el("div", {class: "id"}, `example ${example.id}`) : null,
      el("div", {class: "field"}, el("b", {}, "input"), el("div", {class: "text", dir: "auto"}, example.input)));
    if (example.reference !== undefined && example.reference !== null) {
      head.append(el("div", {class: "field"}, el("b", {}, "reference"), el("div", {class: "text", dir: "auto"}, example.reference)));
    }
    const table = el("table", {class: "grid"});
    const scores = example.scores || [];
    const metricNames = [...new Set(scores.flatMap(s => Object.keys(s || {})))];
    table.append(el("tr", {}, el("th", {class: "layer"}, "layer"), el("th", {}, "readout"),
      ...metricNames.map(n => el("th", {class: "score", title: n}, n))));
    example.layers.forEach((layer, i) => {
      if (layerSet && !layerSet.has(layer)) return;
      const label = example.labels ? example.labels[i] : (layer === top ? `${layer} (top)` : String(layer));
      const grouped = i > 0 && example.layers[i - 1] === layer;
      const row = el("tr", {class: [layer === top ? "top" : "", grouped ? "same-layer" : ""].join(" ").trim(),
        "data-layer": layer, "data-lens": example.lenses ? example.lenses[i] : null},
        el("td", {class: "layer"}, label), el("td", {class: "readout"}, readoutCell(example, i, topText, mode || "agreement")));
      metricNames.forEach(n => row.append(el("td", {class: "score"}, scores[i] && n in scores[i] ? fmt(scores[i][n]) : "")));
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
    if (example.attribution) card.append(el("div", {class: "heat"}, el("h3", {}, `Where each layer looks (${example.attribution.method})`),
      drawAttribution(example.attribution)));
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

  /* Attribution scores in -1..1 (a row scaled to its largest magnitude): blue raises the token, vermillion
     lowers it. */
  function attributionColour(v) {
    const a = Math.min(1, Math.abs(v)).toFixed(3);
    return v >= 0 ? `rgba(0, 114, 178, ${a})` : `rgba(213, 94, 0, ${a})`;
  }
  function scaledRow(values) {
    const top = Math.max(0, ...values.map(v => Math.abs(v)));
    return values.map(v => (top ? v / top : 0));
  }

  /* Rows ({label, values}) of scores over the source positions as one SVG strip chart; the x axis names the
     source's tokens, or its seconds (``seconds``: [start, end]) for audio. */
  function attributionStrips(rows, source, seconds) {
    const n = Math.max(1, source.length), left = 170, h = 17, axis = seconds ? 28 : (n <= 90 ? 70 : 10);
    const cell = Math.max(1.5, Math.min(30, 820 / n)), width = left + n * cell + 12;
    const box = svg("svg", {width, height: rows.length * h + axis, role: "img", class: "attribution-map",
      "aria-label": `scores of ${rows.length} rows over ${source.length} source positions`});
    rows.forEach((row, i) => {
      const label = svg("text", {x: left - 6, y: i * h + 12, "text-anchor": "end", "font-size": 11});
      label.textContent = row.label.length > 26 ? `${row.label.slice(0, 25)}…` : row.label;
      box.append(label);
      scaledRow(row.values).forEach((v, j) => {
        const rect = svg("rect", {x: left + j * cell, y: i * h, width: cell, height: h - 2, fill: attributionColour(v)});
        const tip = svg("title", {});
        tip.textContent = `${row.label} · ${source[j]}: ${fmt(row.values[j])}`;
        rect.append(tip);
        box.append(rect);
      });
    });
    const base = rows.length * h + 4;
    if (seconds) {
      const [lo, hi] = seconds;
      niceTicks(lo, hi, 7).filter(t => t >= lo && t <= hi).forEach((t, _, ticks) => {
        const x = left + ((t - lo) / (hi - lo || 1)) * n * cell;
        box.append(svg("line", {x1: x, x2: x, y1: base - 4, y2: base + 2, stroke: "#5b6577"}));
        const text = svg("text", {x, y: base + 14, "text-anchor": "middle", "font-size": 10});
        text.textContent = `${tickLabel(t, ticks)}s`;
        box.append(text);
      });
    } else if (n <= 90) {
      source.forEach((name, j) => {
        const x = left + (j + 0.5) * cell;
        const text = svg("text", {x, y: base + 4, "font-size": 10, transform: `rotate(55 ${x} ${base + 4})`});
        text.textContent = tokenText(name).trim() || "␣";
        box.append(text);
      });
    }
    return el("div", {class: "attribution-scroll"}, box);
  }

  /* One example's attribution ({source, seconds, target, layers: [{layer, text, total, tokens: [{token, logprob,
     scores}]}]}): layer x source position for all tokens, each layer's tokens as buttons, and where the clicked
     token looks (with a target, the same token at every layer). */
  function drawAttribution(view) {
    const box = el("div", {class: "attribution"});
    const focus = el("div", {class: "attribution-focus", "aria-live": "polite"},
      el("div", {class: "sub"}, "Click a token to see where it looks."));
    box.append(el("h3", {}, "All tokens, per layer"),
      attributionStrips(view.layers.map(l => ({label: `layer ${l.layer}`, values: l.total})), view.source, view.seconds));
    const list = el("div", {class: "attribution-tokens"});
    const show = (layer, k, button) => {
      list.querySelectorAll("button[aria-pressed=true]").forEach(b => b.setAttribute("aria-pressed", "false"));
      button.setAttribute("aria-pressed", "true");
      const token = layer.tokens[k];
      const rows = [{label: `layer ${layer.layer} · ${tokenText(token.token).trim()}`, values: token.scores}];
      if (view.target === "target") {
        view.layers.forEach(l => { if (l !== layer && l.tokens[k]) rows.push({label: `layer ${l.layer}`, values: l.tokens[k].scores}); });
      }
      focus.replaceChildren(el("h3", {}, `Layer ${layer.layer}, token “${tokenText(token.token)}” (log-prob ${fmt(token.logprob)})`),
        attributionStrips(rows, view.source, view.seconds));
    };
    view.layers.forEach(layer => {
      const row = el("div", {class: "attribution-row"}, el("span", {class: "layer"}, `layer ${layer.layer}`));
      if (!layer.tokens.length) row.append(el("span", {class: "empty"}, "(empty)"));
      layer.tokens.forEach((token, k) => {
        const button = el("button", {type: "button", class: "tok chip", "aria-pressed": "false",
          title: `log-prob ${fmt(token.logprob)}`}, tokenText(token.token));
        button.addEventListener("click", () => show(layer, k, button));
        row.append(button);
      });
      list.append(row);
    });
    box.append(list, focus);
    return box;
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

  /* A section of an analysis ({title, caption, heatmaps, attribution, tables}): the 2-D lens, a trace, an
     attribution. */
  function renderSection(section) {
    const part = el("section", {class: "analysis-section"}, el("h2", {dir: "auto"}, section.title));
    if (section.caption) part.append(el("div", {class: "sub", dir: "auto"}, section.caption));
    (section.heatmaps || []).forEach(spec => part.append(el("div", {class: "panel wide"}, drawHeatmap(spec))));
    if (section.attribution) part.append(el("div", {class: "panel wide"}, drawAttribution(section.attribution)));
    const tables = el("div", {class: "panels"});
    if (renderTables(tables, section.tables)) part.append(tables);
    return part;
  }

  return {PALETTE, COLOURINGS, colourings, colourLegend, el, svg, fmt, interval, plural, niceTicks, drawCurves, tokens, heatmap, drawHeatmap, drawAttribution, renderExample,
    renderTables, renderSection};
})();
