// The desk's live transcript panel (web/transcript.py): what the citizen and the operator say
// while the call runs (server-sent events "transcript"), the order's category and the
// knowledge entries it suggests ("suggestion"). A page opened during a call asks
// /api/live/transcript/<call id> once. No build step.
"use strict";

(() => {
  const panel = document.querySelector("#live-transcript");
  let callId = null;

  function reset(id) {
    if (id === callId) return;
    callId = id;
    for (const el of panel.querySelectorAll("[data-side], [data-partial]")) el.textContent = "";
    panel.querySelector("#suggested-category").textContent = "—";
    panel.querySelector("#suggested-knowledge").replaceChildren();
  }

  function showSide(side, text, partial) {
    panel.querySelector(`[data-side='${side}']`).textContent = text;
    panel.querySelector(`[data-partial='${side}']`).textContent = partial ? ` ${partial}…` : "";
    panel.hidden = false;
  }

  function showSuggestion(suggestion) {
    const category = panel.querySelector("#suggested-category");
    category.textContent = suggestion.category;
    category.title = (suggestion.matched || []).join(" ");
    const list = panel.querySelector("#suggested-knowledge");
    list.replaceChildren(...suggestion.knowledge.map((entry) => {
      const item = document.createElement("li");
      item.dataset.entry = entry.id;
      item.textContent = `${entry.title} (${entry.category})`;
      return item;
    }));
  }

  function listen(name, handler) {
    live.addEventListener(name, (event) => {
      const data = JSON.parse(event.data);
      reset(data.call_id);
      handler(data);
    });
  }

  const live = new EventSource("/api/live?topics=transcript,suggestion");
  listen("transcript", (heard) => showSide(heard.side, heard.text, heard.partial));
  listen("suggestion", showSuggestion);
  live.addEventListener("open", () => { panel.dataset.live = "open"; });

  fetch("/api/desk", { headers: { Accept: "application/json" } })
    .then((response) => (response.ok ? response.json() : null))
    .then(async (desk) => {
      if (!desk || !desk.call) return;
      const response = await fetch(`/api/live/transcript/${encodeURIComponent(desk.call.call_id)}`);
      if (!response.ok) return;
      const body = await response.json();
      reset(body.call_id);
      for (const [side, heard] of Object.entries(body.sides)) showSide(side, heard.text, heard.partial);
      if (body.suggestion) showSuggestion(body.suggestion);
    })
    .catch(() => {});
})();
