"use strict";
(async () => {
  const {el} = Lens;
  const PAGE = JSON.parse(document.getElementById("data").textContent);
  const token = new URLSearchParams(location.hash.slice(1)).get("token");
  const headers = token ? {Authorization: `Bearer ${token}`} : {};
  const $ = id => document.getElementById(id);
  const status = (text, error) => { $("status").textContent = text; $("status").className = "status" + (error ? " error" : ""); };
  const info = await (await fetch("/api/info", {headers})).json();
  $("title").textContent = PAGE.title;
  $("subtitle").textContent = `${info.model} · ${info.family} · ${info.num_encoder_layers} encoder layers (0 = embeddings) · ${info.lens} lens · decoderlens ${PAGE.version}`;
  const filesMode = info.input !== "text";
  if (filesMode) {
    $("inputs").hidden = true; $("inputs").required = false; $("files").hidden = false;
    $("files").accept = info.input === "speech" ? "audio/*" : "image/*";
    $("inputs-label").textContent = info.input === "speech" ? "Audio files" : "Images"; $("inputs-label").htmlFor = "files";
  }
  if (info.target_language !== "none") $("tgt-lang-label").hidden = false;
  if (info.speech_prompt) { $("language-label").hidden = false; $("task-label").hidden = false; }
  if (info.lens.startsWith("tuned")) $("lens-label").hidden = false;

  function settings() {
    const body = {layers: $("layers").value.trim() || "all", num_beams: Number($("num-beams").value) || 1,
      token_scores: true};
    if ($("max-new-tokens").value) body.max_new_tokens = Number($("max-new-tokens").value);
    for (const [id, key] of [["tgt-lang", "tgt_lang"], ["language", "language"], ["task", "task"]]) {
      if (!$(id).closest("label").hidden && $(id).value) body[key] = $(id).value;
    }
    if (!$("lens-label").hidden) body.lens = $("lens").value;
    return body;
  }
  function texts() { return $("inputs").value.split("\n").map(t => t.trim()).filter(Boolean); }

  const state = [];
  let scored = null;  // the first input's scores of a target: {target_tokens, ranks: {layer: [rank per token]}}
  function draw() {
    const mode = $("colouring").value;
    $("token-legend").replaceChildren(Lens.colourLegend(mode));
    $("examples").replaceChildren(...state.map((ex, i) => {
      const layers = Object.keys(ex.layers).map(Number).sort((a, b) => a - b);
      const view = {id: String(i), input: ex.input, layers, outputs: layers.map(l => ex.layers[l])};
      if (ex.scores) {
        view.tokens = layers.map(l => ex.scores[l].tokens);
        view.logprobs = layers.map(l => ex.scores[l].logprobs);
        view.entropies = layers.map(l => ex.scores[l].entropies);
      }
      if (i === 0 && scored) {
        view.target_tokens = scored.target_tokens;
        view.token_ranks = layers.map(l => scored.ranks[l] || null);
      }
      return Lens.renderExample(view, info.num_encoder_layers, null, mode);
    }));
  }
  function showResult(result) {
    state.length = 0;
    result.examples.forEach(ex => state.push({input: ex.input,
      layers: Object.fromEntries(ex.readouts.map(r => [r.layer, r.text])),
      scores: ex.readouts.every(r => r.logprobs && r.logprobs.length === r.tokens.length)
        ? Object.fromEntries(ex.readouts.map(r => [r.layer, r])) : null}));
    draw();
  }
  $("colouring").addEventListener("input", draw);

  async function readOut(event) {
    event.preventDefault();
    $("extras").replaceChildren();
    let request;
    if (filesMode) {
      const form = new FormData();
      [...$("files").files].forEach(f => form.append("files", f));
      form.append("settings", JSON.stringify(settings()));
      request = {method: "POST", headers, body: form};
    } else {
      request = {method: "POST", headers: {...headers, "Content-Type": "application/json"},
        body: JSON.stringify({...settings(), inputs: texts()})};
    }
    status("reading out…");
    $("go").disabled = true;
    state.length = 0;
    scored = null;
    (filesMode ? [...$("files").files].map(f => f.name) : texts()).forEach(t => state.push({input: t, layers: {}}));
    draw();
    try {
      const response = await fetch("/api/readout/stream", request);
      if (!response.ok) { status((await response.json()).error, true); return; }
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "", pending = false;
      for (;;) {
        const {value, done} = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, {stream: true});
        const lines = buffer.split("\n");
        buffer = lines.pop();
        for (const line of lines) {
          if (!line.trim()) continue;
          const message = JSON.parse(line);
          if (message.event === "tokens") {
            state[message.input].layers[message.layer] = message.text;
            if (!pending) { pending = true; requestAnimationFrame(() => { pending = false; draw(); }); }
          } else if (message.event === "done") {
            showResult(message.result); status("done");
          } else if (message.event === "error") status(message.error, true);
        }
      }
    } catch (err) {
      status(String(err), true);
    } finally {
      $("go").disabled = false;
    }
  }

  async function post(path, body) {
    const response = await fetch(path, {method: "POST", headers: {...headers, "Content-Type": "application/json"},
      body: JSON.stringify(body)});
    const data = await response.json();
    if (!response.ok) { status(data.error, true); return null; }
    return data;
  }
  async function score() {
    const inputs = texts().slice(0, 1), target = $("target").value.trim();
    if (!inputs.length || !target) { status("give an input and a target to score", true); return; }
    const body = {inputs, targets: [target], layers: settings().layers};
    if (settings().tgt_lang) body.tgt_lang = settings().tgt_lang;
    const data = await post("/api/score?view=true", body);
    if (!data) return;
    const view = data.examples[0];
    scored = {target_tokens: view.target_tokens,
      ranks: Object.fromEntries(view.layers.map((l, i) => [l, view.token_ranks[i]]))};
    draw();
    $("extras").replaceChildren(el("h2", {}, `Scores of "${target}"`), Lens.heatmap(view, null));
    status("scored");
  }
  async function grid() {
    const inputs = texts().slice(0, 1), target = $("target").value.trim();
    if (!inputs.length) { status("give an input", true); return; }
    const body = {inputs, layers: settings().layers};
    if (target) body.targets = [target];
    const data = await post("/api/grid?view=true", body);
    if (!data) return;
    $("extras").replaceChildren(...data.sections.map(Lens.renderSection));
    status("2-D lens done");
  }

  async function attribute() {
    const inputs = texts().slice(0, 1), target = $("target").value.trim();
    if (!inputs.length) { status("give an input (text models)", true); return; }
    const {layers, max_new_tokens, tgt_lang, language, task, lens} = settings();
    const body = {inputs, layers, method: $("method").value};
    Object.entries({max_new_tokens, tgt_lang, language, task, lens}).forEach(([k, v]) => { if (v !== undefined) body[k] = v; });
    if (target) body.targets = [target];
    status("attributing…");
    const data = await post("/api/attribute?view=true", body);
    if (!data) return;
    $("extras").replaceChildren(...data.sections.map(Lens.renderSection));
    status("attribution done: click a token to see where it looks");
  }

  $("ask").addEventListener("submit", readOut);
  $("inputs").addEventListener("keydown", e => { if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) $("ask").requestSubmit(); });
  $("score").addEventListener("click", score);
  $("grid").addEventListener("click", grid);
  $("attribute").addEventListener("click", attribute);
})();
