"use strict";
/* The API description of the live explorer, drawn from its OpenAPI document (inlined: no network, no libraries). */
(() => {
  const {el} = Lens;
  const DATA = JSON.parse(document.getElementById("data").textContent);
  const spec = DATA.openapi;
  const schemas = (spec.components || {}).schemas || {};
  document.getElementById("title").textContent = DATA.title;
  document.getElementById("subtitle").textContent = `${spec.info.description || ""} · OpenAPI ${spec.openapi} · ` +
    `decoderlens ${DATA.version}`;

  function resolve(schema) {
    if (schema && schema.$ref) return schemas[schema.$ref.split("/").pop()] || {};
    return schema || {};
  }
  function typeOf(schema) {
    const s = resolve(schema);
    if (s.anyOf) return s.anyOf.map(typeOf).join(" | ");
    if (s.type === "array") return `list of ${typeOf(s.items)}`;
    if (s.enum) return s.enum.map(v => JSON.stringify(v)).join(" | ");
    return s.type || (schema && schema.$ref ? schema.$ref.split("/").pop() : "any");
  }
  function fields(schema) {
    const s = resolve(schema);
    const props = s.properties || {};
    if (!Object.keys(props).length) return null;
    const required = new Set(s.required || []);
    const table = el("table", {class: "analysis api"}, el("tr", {}, el("th", {}, "field"), el("th", {}, "type"),
      el("th", {}, "default"), el("th", {}, "meaning")));
    Object.entries(props).forEach(([name, p]) => table.append(el("tr", {},
      el("td", {}, el("code", {}, name), required.has(name) ? " (required)" : ""), el("td", {}, typeOf(p)),
      el("td", {}, p.default === undefined ? "" : JSON.stringify(p.default)), el("td", {}, p.description || ""))));
    return table;
  }

  const box = document.getElementById("routes");
  Object.entries(spec.paths || {}).forEach(([path, methods]) => {
    Object.entries(methods).forEach(([method, op]) => {
      const card = el("div", {class: "panel wide route"},
        el("h3", {}, el("code", {}, `${method.toUpperCase()} ${path}`), op.summary ? ` · ${op.summary}` : ""));
      if (op.description) card.append(el("div", {class: "sub"}, op.description.replace(/``/g, "")));
      (op.parameters || []).forEach(p => card.append(el("div", {class: "sub"},
        `query ${p.name}: ${typeOf(p.schema)}${p.required ? " (required)" : ""}`)));
      const body = op.requestBody && op.requestBody.content;
      if (body) {
        Object.entries(body).forEach(([kind, content]) => {
          card.append(el("div", {class: "sub"}, `request body (${kind})`));
          const table = fields(content.schema);
          if (table) card.append(table);
        });
      }
      box.append(card);
    });
  });
})();
