// The department portal (web/portal.py): the department's orders with their time limits, the
// actions through the work-order API, news (new orders, urgings) by server-sent events
// (web/live.py). The time left is recounted on the page each minute; nothing polls the server.
"use strict";

const $ = (selector) => document.querySelector(selector);
const NEWS_EN = { dispatched: "new order", reworked: "rework", urged: "urged", escalated: "escalated (overdue)" };

let me = null;          // /api/me: name, department, csrf_token
let portal = null;      // /api/portal: department, timezone
let skew = 0;           // server clock minus the browser's (ms)
let orders = new Map(); // number -> order as the department sees it
let selected = null;

function say(text) { $("#message").textContent = text || ""; }

function when(iso) {
  return iso ? new Date(iso).toLocaleString("zh-CN", { hour12: false, timeZone: portal.timezone }) : "—";
}

function timeLeft(order) {
  if (!order.due_at) return { text: "—", overdue: false };
  const ms = new Date(order.due_at) - (Date.now() + skew);
  const overdue = ms < 0;
  const minutes = Math.floor(Math.abs(ms) / 60000);
  const d = Math.floor(minutes / 1440), h = Math.floor((minutes % 1440) / 60), m = minutes % 60;
  const span = d ? `${d}天${h}小时` : h ? `${h}小时${m}分` : `${m}分`;
  return { text: overdue ? `超期 ${span} overdue` : span, overdue };
}

function cell(row, value, cls) {
  const td = row.insertCell();
  td.textContent = value == null || value === "" ? "—" : value;
  if (cls) td.className = cls;
  return td;
}

function render() {
  const body = $("#orders tbody");
  body.replaceChildren();
  for (const order of orders.values()) {
    const row = body.insertRow();
    row.dataset.number = order.number;
    const left = timeLeft(order);
    row.classList.toggle("overdue", left.overdue);
    row.classList.toggle("selected", order.number === selected);
    if (order.fresh) row.classList.add("fresh");
    cell(row, order.number, "number");
    cell(row, order.part === "lead" ? "主办 lead" : "协办 assisting", "part");
    cell(row, `${order.label} ${order.state}`, "state");
    cell(row, `${order.category} · ${order.subject}`);
    cell(row, order.location_text);
    cell(row, when(order.due_at), left.overdue ? "due overdue" : "due");
    cell(row, left.text, left.overdue ? "left overdue" : "left");
    const open = row.insertCell().appendChild(document.createElement("button"));
    open.textContent = "办理 Open";
    open.addEventListener("click", () => show(order.number));
  }
  $("#empty").hidden = orders.size > 0;
}

function show(number) {
  selected = number;
  const order = orders.get(number);
  render();
  $("#detail").hidden = !order;
  if (!order) return;
  $("#detail").dataset.number = number;
  $("#detail").dataset.state = order.state;
  $("#d-number").textContent = number;
  $("#d-label").textContent = `${order.label} ${order.state}`;
  $("#d-caller").textContent = [order.caller_name, order.caller_phone].filter(Boolean).join(" ") || "（保密 / not shown）";
  $("#d-description").textContent = order.description || "—";
  $("#d-assisting").textContent = order.assisting_departments.join("、") || "—";
  $("#d-reply").textContent = order.reply || "—";
  const lead = order.part === "lead";
  for (const element of document.querySelectorAll("#detail [data-act]")) {
    element.hidden = element.dataset.act === "assist-reply" ? lead : !lead && element.dataset.act !== "note";
  }
  const history = $("#history tbody");
  history.replaceChildren();
  for (const entry of [...order.history].reverse()) {
    const row = history.insertRow();
    cell(row, when(entry.at));
    cell(row, `${entry.actor} (${entry.role})`);
    cell(row, entry.to_state && entry.to_state !== entry.from_state ? `${entry.action} → ${entry.to_state}` : entry.action);
    cell(row, entry.note);
  }
}

function keep(order) {
  const previous = orders.get(order.number);
  orders.set(order.number, { ...order, part: order.part || previous?.part, label: order.label || previous?.label });
}

async function act(action, body) {
  say("");
  try {
    const order = await api("POST", `/api/workorders/${selected}/${action}`, body);
    const previous = orders.get(order.number);
    keep({ ...order, part: previous.part, label: "" });
    await reload();  // labels, and orders that no longer need the department
    show(order.number);
    say(`✓ ${action}`);
  } catch (error) { say(error.message); }
}

async function reload() {
  portal = await api("GET", "/api/portal");
  skew = new Date(portal.now) - Date.now();
  const current = new Map();
  for (const order of portal.orders) current.set(order.number, order);
  orders = current;
  render();
}

async function start() {
  me = await api("GET", "/api/me");
  await reload();
  $("#who").textContent = portal.user;
  $("#department").textContent = portal.department;
  $("#sign-out").addEventListener("click", async () => {
    await fetch("/logout", { method: "POST", headers: { "X-CSRF-Token": me.csrf_token } });
    location.assign("/login");
  });
  for (const button of document.querySelectorAll("#detail button[data-act]")) {
    button.addEventListener("click", () => act(button.dataset.act, {}));
  }
  for (const form of document.querySelectorAll("#detail form[data-act]")) {
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const body = Object.fromEntries(new FormData(form));
      if (body.days) body.days = Number(body.days);
      act(form.dataset.act, body).then(() => form.reset());
    });
  }
  setInterval(render, 60000);  // the time left, recounted on the page

  const live = new EventSource("/api/portal/live?topics=portal");
  live.addEventListener("portal", (event) => {
    const order = JSON.parse(event.data);
    orders.set(order.number, { ...order, fresh: true });
    const news = $("#news");
    news.hidden = false;
    news.textContent = `${order.news_label} ${NEWS_EN[order.news] || order.news}: ${order.number} ${order.subject}`;
    render();
    if (order.number === selected) show(order.number);
  });
  live.addEventListener("open", () => { $("#live").textContent = "实时 live"; $("#live").className = "live open"; });
  live.addEventListener("error", () => { $("#live").textContent = "重连中 reconnecting"; $("#live").className = "live"; });
}

start().catch((error) => say(error.message));
