"use strict";
(() => {
  const {el} = Lens;
  const DATA = JSON.parse(document.getElementById("data").textContent);
  document.getElementById("title").textContent = DATA.title;
  document.getElementById("subtitle").textContent = `${DATA.subtitle} · decoderlens ${DATA.version}`;
  const box = document.getElementById("sections");
  DATA.sections.forEach(section => {
    const part = el("section", {class: "analysis-section"}, el("h2", {dir: "auto"}, section.title));
    if (section.caption) part.append(el("div", {class: "sub", dir: "auto"}, section.caption));
    (section.heatmaps || []).forEach(spec => part.append(el("div", {class: "panel wide"}, Lens.drawHeatmap(spec))));
    const tables = el("div", {class: "panels"});
    if (Lens.renderTables(tables, section.tables)) part.append(tables);
    box.append(part);
  });
})();
