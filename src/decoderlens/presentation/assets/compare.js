"use strict";
(() => {
  const {el, plural} = Lens;
  const DATA = JSON.parse(document.getElementById("data").textContent);
  const C = DATA.comparison;
  const rows = pick => C.layers.map(l => ({layer: l.layer, metrics: Object.fromEntries(Object.entries(l.metrics)
    .map(([name, m]) => [name, pick(m)]))}));
  const flat = v => ({value: v, low: v, high: v});
  const metrics = Object.fromEntries(Object.entries(DATA.metrics).map(([k, v]) =>
    [k, {...v, baseline: k in C.baselines ? C.baselines[k] : v.baseline}]));
  Lens.drawCurves(document.getElementById("curves"), [
    {label: `A: ${DATA.names.a}`, color: DATA.style.series.a, rows: rows(m => flat(m.a))},
    {label: `B: ${DATA.names.b}`, color: DATA.style.series.b, rows: rows(m => flat(m.b)), dashed: true}], metrics,
    {style: DATA.style});
  const diffInfo = Object.fromEntries(Object.entries(DATA.metrics).map(([k, v]) =>
    [k, {...v, bounds: null, axis: `B − A (${k})`}]));
  Lens.drawCurves(document.getElementById("diffs"), [{label: "B − A (95% paired CI band)",
    color: DATA.style.series.difference, rows: rows(m => ({value: m.diff, low: m.ci_low, high: m.ci_high}))}], diffInfo,
    {style: DATA.style, noChance: true, free: true});
  Lens.renderTables(document.getElementById("tables"), DATA.tables);
  const box = document.getElementById("examples");
  C.disagreements.forEach(d => box.append(Lens.renderExample({id: d.id, input: d.input, reference: d.reference,
    layers: d.rows.flatMap(r => [r[0], r[0]]), outputs: d.rows.flatMap(r => [r[1], r[2]]),
    labels: d.rows.flatMap(r => [`A · ${r[0]}`, `B · ${r[0]}`])}, null, null)));
  if (!C.disagreements.length) box.append(el("p", {class: "empty"}, "The runs give the same outputs everywhere."));
  document.getElementById("title").textContent = DATA.title;
  document.getElementById("subtitle").textContent = `${plural(C.examples, "shared example")} · ` +
    `A = ${C.a}, B = ${C.b}` + (C.warnings.length ? ` · ${C.warnings.join("; ")}` : "") + ` · decoderlens ${DATA.version}`;
})();
