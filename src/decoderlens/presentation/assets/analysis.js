"use strict";
(() => {
  const DATA = JSON.parse(document.getElementById("data").textContent);
  document.getElementById("title").textContent = DATA.title;
  document.getElementById("subtitle").textContent = `${DATA.subtitle} · decoderlens ${DATA.version}`;
  const box = document.getElementById("sections");
  DATA.sections.forEach(section => box.append(Lens.renderSection(section)));
})();
