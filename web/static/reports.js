// The reports page: a date range form, charts drawn by Chart.js (vendored beside this file),
// the report's tables; the same report as CSV and XLSX from the links.
"use strict";

const charts = {};
const TITLES = {
  periods: "按周期 By period", operators: "坐席 Operators", "by channel": "按渠道 By channel",
  "by category": "按类别 By category", "by district": "按区县 By district",
  "by department": "按承办单位 By department",
};

function localDate(d) {
  return new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 10);
}

function query() {
  const p = new URLSearchParams({ from: document.getElementById("from").value,
                                  to: document.getElementById("to").value });
  return `${document.getElementById("period").value}.{fmt}?${p}`;
}

function draw(id, type, labels, datasets, options = {}) {
  if (charts[id]) charts[id].destroy();
  charts[id] = new Chart(document.getElementById(id), {
    type, data: { labels, datasets },
    options: { responsive: true, maintainAspectRatio: false, animation: false, ...options },
  });
}

function percent(v) { return v === null ? null : Math.round(v * 1000) / 10; }

function table(t) {
  const section = document.createElement("div");
  const h = document.createElement("h2");
  h.textContent = TITLES[t.name] || t.name;
  const box = document.createElement("div");
  box.className = "scroll";
  const el = document.createElement("table");
  el.dataset.table = t.name;
  const head = el.createTHead().insertRow();
  for (const name of t.header) head.appendChild(document.createElement("th")).textContent = name;
  const body = el.createTBody();
  for (const row of t.rows) {
    const tr = body.insertRow();
    for (const v of row) tr.insertCell().textContent = v === null ? "" : v;
  }
  box.appendChild(el);
  section.append(h, box);
  return section;
}

async function show() {
  const message = document.getElementById("message");
  const path = query();
  document.getElementById("csv").href = "/api/reports/" + path.replace("{fmt}", "csv");
  document.getElementById("xlsx").href = "/api/reports/" + path.replace("{fmt}", "xlsx");
  const response = await fetch("/api/reports/" + path.replace("{fmt}", "json"),
                               { credentials: "same-origin" });
  const body = await response.json();
  if (!response.ok) {
    message.textContent = body.error ? body.error.message : response.statusText;
    return;
  }
  message.textContent = "";
  document.getElementById("zone").textContent =
    `时区 Time zone ${body.timezone} · 服务水平 answered within ${body.service_level_s} s`;
  const rows = body.periods;
  const labels = rows.map((r) => r.period);
  const pick = (k) => rows.map((r) => r[k]);
  draw("calls-chart", "bar", labels, [
    { label: "呼入 Calls in", data: pick("calls_in") },
    { label: "接通 Answered", data: pick("answered") },
    { label: "放弃 Abandoned", data: pick("abandoned") },
  ]);
  draw("rates-chart", "line", labels, [
    { label: "接通率 Answer rate %", data: rows.map((r) => percent(r.answer_rate)) },
    { label: "服务水平 Service level %", data: rows.map((r) => percent(r.service_level)) },
  ], { scales: { y: { min: 0, max: 100 } } });
  draw("orders-chart", "bar", labels, [
    { label: "直接答复 Answered directly", data: pick("directly") },
    { label: "派单 Dispatched", data: pick("dispatched") },
    { label: "按时办结 Replied on time", data: pick("on_time") },
  ]);
  const channels = body.breakdowns.channel;
  draw("channel-chart", "bar", labels,
       Object.keys(channels).sort().map((k) => ({ label: k, data: channels[k] })),
       { scales: { x: { stacked: true }, y: { stacked: true } } });
  const tables = document.getElementById("tables");
  tables.replaceChildren(...body.tables.map(table));
}

document.addEventListener("DOMContentLoaded", () => {
  const today = new Date();
  document.getElementById("to").value = localDate(today);
  document.getElementById("from").value = localDate(new Date(today.getTime() - 13 * 86400000));
  const params = new URLSearchParams(location.search);
  for (const k of ["period", "from", "to"]) {
    if (params.get(k)) document.getElementById(k).value = params.get(k);
  }
  document.getElementById("range").addEventListener("submit", (event) => {
    event.preventDefault();
    show();
  });
  show();
});
