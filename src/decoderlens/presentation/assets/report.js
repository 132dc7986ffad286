"use strict";
(() => {
  const {el, plural} = Lens;
  const DATA = JSON.parse(document.getElementById("data").textContent);
  const PAGE_SIZE = 10;
  const TOP = DATA.num_encoder_layers;
  let page = 0;
  let filtered = DATA.examples;

  function setupControls() {
    const layerFilter = document.getElementById("layer-filter");
    DATA.layers.forEach(l => layerFilter.append(el("option", {value: String(l)}, `only ${l} and top`)));
    const condition = document.getElementById("condition");
    const metricNames = DATA.examples.length ? [...new Set(DATA.examples[0].scores.flatMap(s => Object.keys(s)))] : [];
    const lenses = DATA.series.length > 1 ? DATA.series.map(s => s.key) : [null];
    metricNames.forEach(name => DATA.layers.filter(l => l !== TOP).forEach(l => lenses.forEach(lens =>
      condition.append(el("option", {value: lens ? `${name}|${l}|${lens}` : `${name}|${l}`},
        `top right but layer ${l}${lens ? " " + lens : ""} wrong (${name})`)))));
    if (!metricNames.length) document.getElementById("cond-label").hidden = true;
    const colouring = document.getElementById("colouring");
    Lens.colourings(DATA.examples).forEach(m => colouring.append(el("option", {value: m}, Lens.COLOURINGS[m])));
    colouring.addEventListener("input", render);
    for (const id of ["search", "layer-filter", "condition"]) {
      document.getElementById(id).addEventListener("input", () => { page = 0; applyFilters(); });
    }
    document.getElementById("prev").addEventListener("click", () => { page -= 1; render(); });
    document.getElementById("next").addEventListener("click", () => { page += 1; render(); });
  }

  function applyFilters() {
    const query = document.getElementById("search").value.trim().toLowerCase();
    const condition = document.getElementById("condition").value;
    filtered = DATA.examples.filter(ex => {
      if (query && ![ex.input, ex.reference || "", ...ex.outputs].some(t => String(t).toLowerCase().includes(query))) return false;
      if (condition !== "all") {
        const [name, layer, lens] = condition.split("|");
        const topIndex = ex.layers.indexOf(TOP);
        const index = ex.layers.findIndex((l, i) => l === Number(layer) && (!lens || ex.lenses[i] === lens));
        if (topIndex < 0 || index < 0) return false;
        if (!(ex.scores[topIndex][name] >= 0.5 && ex.scores[index][name] < 0.5)) return false;
      }
      return true;
    });
    render();
  }

  function render() {
    const pages = Math.max(1, Math.ceil(filtered.length / PAGE_SIZE));
    page = Math.min(Math.max(0, page), pages - 1);
    const value = document.getElementById("layer-filter").value;
    const layerSet = value === "all" ? null : new Set([Number(value), TOP]);
    const box = document.getElementById("examples");
    const mode = document.getElementById("colouring").value || "agreement";
    document.getElementById("token-legend").replaceChildren(Lens.colourLegend(mode));
    box.replaceChildren(...filtered.slice(page * PAGE_SIZE, (page + 1) * PAGE_SIZE).map(ex => Lens.renderExample(ex, TOP, layerSet, mode)));
    if (!filtered.length) box.append(el("p", {class: "empty"}, "No example matches the filters."));
    document.getElementById("count").textContent = `${filtered.length} of ${plural(DATA.examples.length, "example")}`;
    document.getElementById("page-info").textContent = `page ${page + 1} of ${pages}`;
    document.getElementById("prev").disabled = page === 0;
    document.getElementById("next").disabled = page >= pages - 1;
  }

  function settingsTable() {
    const table = el("table", {class: "settings"});
    const rows = Object.entries(DATA.settings || {});
    Object.entries(DATA.metrics || {}).forEach(([name, info]) => { if (info.signature) rows.push([`${name} signature`, info.signature]); });
    rows.forEach(([key, value]) => table.append(el("tr", {}, el("td", {}, key),
      el("td", {}, typeof value === "object" && value !== null ? JSON.stringify(value) : String(value)))));
    document.getElementById("settings").append(table);
  }

  document.getElementById("title").textContent = DATA.title;
  document.getElementById("subtitle").textContent =
    `${plural(DATA.examples.length, "example")}, encoder layers ${DATA.layers[0]}-${DATA.layers[DATA.layers.length - 1]} ` +
    `(0 = embeddings, ${TOP} = final output) · decoderlens ${DATA.version}`;
  const drawn = Lens.drawCurves(document.getElementById("curves"), DATA.series, DATA.metrics, {style: DATA.style});
  if (!drawn) document.getElementById("curves-section").hidden = true;
  if (!Lens.renderTables(document.getElementById("tables"), DATA.tables)) document.getElementById("tables-section").hidden = true;
  if (DATA.grid) document.getElementById("grid").append(el("div", {class: "panel wide"}, Lens.drawHeatmap(DATA.grid)));
  else document.getElementById("grid-section").hidden = true;
  settingsTable();
  setupControls();
  applyFilters();
})();
