// The operator's desk (web/desk.py): seat state buttons, the call that pops by server-sent
// events (web/live.py), the call's work order saved as the operator types. No build step.
"use strict";

const $ = (selector) => document.querySelector(selector);
const FIELDS = ["category", "subject", "description", "location_text", "lead_department",
                "confidential", "no_revisit"];
const STATES = { logged_out: "未签入", available: "空闲", ringing: "振铃", on_call: "通话中",
                 wrap_up: "话后处理", paused: "示忙" };
const SAVE_AFTER_MS = 400;

let me = null;        // /api/me: name, extension, csrf_token
let call = null;      // the call on screen (the desk's call context)
let timeLimits = {};  // category -> due time if dispatched now
let pending = {};     // fields typed but not saved yet
let saveTimer = null;
let saving = Promise.resolve();

function say(text) { $("#message").textContent = text || ""; }

function text(element, value) { element.textContent = value == null || value === "" ? "—" : value; }

function when(iso) { return iso ? new Date(iso).toLocaleString("zh-CN", { hour12: false }) : ""; }

function setState(state, reason) {
  const badge = $("#seat-state");
  badge.textContent = `${STATES[state] || state} ${state}`;
  badge.className = `state ${state}`;
  badge.dataset.state = state;
  $("#seat-reason").textContent = reason || "";
}

async function seat(action, body) {
  say("");
  try {
    const done = await api("POST", `/api/seats/${me.extension}/${action}`, body || {});
    setState(done.state, done.reason);
  } catch (error) { say(error.message); }
}

function options(select, values, labels) {
  select.replaceChildren(...values.map((value) => {
    const option = document.createElement("option");
    option.value = value;
    option.textContent = labels ? labels(value) : value;
    return option;
  }));
}

function row(cells) {
  const tr = document.createElement("tr");
  for (const cell of cells) {
    const td = document.createElement("td");
    if (cell instanceof Node) td.append(cell); else td.textContent = cell ?? "";
    tr.append(td);
  }
  return tr;
}

function showOrder(order) {
  $("#order-number").textContent = order.number;
  const state = $("#order-state");
  state.textContent = order.state;
  state.dataset.state = order.state;
  for (const name of FIELDS) {
    const field = $(`#${name}`);
    if (name in pending || document.activeElement === field) continue;  // the operator's words win
    if (field.type === "checkbox") field.checked = Boolean(order[name]);
    else {
      if (field.tagName === "SELECT" && order[name] && ![...field.options].some((o) => o.value === order[name])) {
        field.append(new Option(order[name], order[name]));
      }
      field.value = order[name] ?? "";
    }
  }
  if (order.transcript) $("#transcript").textContent = order.transcript;
  const open = order.state === "registered";
  for (const id of ["#dispatch", "#answer", "#merge"]) $(id).disabled = !open;
  if (order.due_at) text($("#time-limit"), `${when(order.due_at)} (${order.lead_department})`);
  else showTimeLimit();
}

function showTimeLimit() { text($("#time-limit"), when(timeLimits[$("#category").value])); }

// This seat was chosen for another seat's consultation: who asks about which caller. Not
// a call of this seat's until it is put through (then the "call" event pops it).
function showConsultation(about) {
  const banner = $("#consultation");
  banner.textContent = `咨询 Consultation: 坐席 seat ${about.from_seat} · 队列 ${about.queue} · ` +
    `来电 ${about.caller_number || "—"}`;
  banner.dataset.call = about.call_id;
  banner.hidden = false;
}

function showCall(context) {
  $("#consultation").hidden = true;
  call = context;
  pending = {};
  timeLimits = context.time_limits || {};
  $("#idle").hidden = true;
  $("#call").hidden = false;
  $("#call-ended").hidden = true;
  text($("#caller-number"), context.caller_number);
  const ivr = context.ivr || {};
  text($("#ivr-language"), ivr.language);
  text($("#ivr-keys"), (ivr.keys || []).join(" "));
  text($("#ivr-queue"), context.queue || ivr.route);
  text($("#ivr-wait"), ivr.wait_s == null ? "" : `${ivr.wait_s} s`);
  context.earlier_orders = context.earlier_orders || [];
  context.earlier_calls = context.earlier_calls || [];
  $("#earlier-orders tbody").replaceChildren(...context.earlier_orders.map((o) => {
    const pick = document.createElement("input");
    pick.type = "radio"; pick.name = "earlier"; pick.value = o.number;
    pick.addEventListener("change", () => { $("#merge-into").value = o.number; });
    const tr = row([pick, o.number, o.state, o.category, o.subject, o.lead_department]);
    tr.dataset.number = o.number; tr.dataset.state = o.state;
    return tr;
  }));
  $("#earlier-calls tbody").replaceChildren(...context.earlier_calls.map((c) =>
    row([when(c.started_at), c.language, c.route, c.hangup_cause_text])));
  options($("#merge-into"), ["", ...context.earlier_orders.map((o) => o.number)],
          (n) => n ? `并入 ${n}` : "并入… / merge into…");
  $("#transcript").textContent = "（通话结束后生成 / when the call is over）";
  $("#answer-text").value = "";
  $("#saved").textContent = "";
  $("#order").hidden = !context.order;
  if (!context.order) { say("工单未能打开，请刷新 / the call's order could not be opened: reload"); return; }
  showOrder(context.order);
  $("#kb-q").value = "";
  knowledge(`/api/knowledge/suggest?order=${encodeURIComponent(context.order.number)}`);
}

function showKnowledge(entries) {
  $("#kb-results").replaceChildren(...entries.map((entry) => {
    const item = document.createElement("li");
    const title = document.createElement("b");
    title.textContent = entry.title;
    const use = document.createElement("button");
    use.type = "button"; use.className = "kb-use"; use.textContent = "引用 Use";
    use.addEventListener("click", () => {  // the answer cites the entry it gives
      $("#answer-text").value = `【知识库：${entry.title}】${entry.content}`;
    });
    const content = document.createElement("p");
    content.textContent = `${entry.category} · ${entry.content}`;
    item.append(title, " ", use, content);
    return item;
  }));
}

async function knowledge(path) {
  try { showKnowledge((await api("GET", path)).entries); }
  catch (error) { $("#kb-results").replaceChildren(); say(`知识库 knowledge: ${error.message}`); }
}

function typed(event) {
  if (!call) return;
  const field = event.target;
  pending[field.name] = field.type === "checkbox" ? field.checked : field.value;
  if (field.name === "category") showTimeLimit();
  clearTimeout(saveTimer);
  saveTimer = setTimeout(save, SAVE_AFTER_MS);
}

function save() {
  clearTimeout(saveTimer);
  const changes = pending;
  pending = {};
  if (!call || Object.keys(changes).length === 0) return saving;
  const number = call.order.number;
  $("#saved").textContent = "保存中… saving";
  saving = saving.then(async () => {
    try {
      const order = await api("PATCH", `/api/workorders/${number}`, changes);
      if (call && call.order.number === number) call.order = order;
      $("#saved").textContent = `已保存 saved ${new Date().toLocaleTimeString("zh-CN", { hour12: false })}`;
      $("#saved").dataset.saved = String(Date.now());
    } catch (error) {
      pending = { ...changes, ...pending };  // tried again with the next keystroke
      $("#saved").textContent = "";
      say(`未保存 not saved: ${error.message}`);
    }
  });
  return saving;
}

async function act(action, body) {
  say("");
  await save();
  try {
    const order = await api("POST", `/api/workorders/${call.order.number}/${action}`, body);
    call.order = order;
    showOrder(order);
  } catch (error) { say(error.message); }
}

const EMERGENCY = { 110: "报警", 119: "火警", 120: "急救", 122: "交通事故" };

async function transfer(to) {
  say("");
  try {
    const done = await api("POST", `/api/seats/${me.extension}/transfer`, { to });
    say(`已转接 transferred to ${done.to}`);
  } catch (error) { say(error.message); }
}

// An attended transfer: the caller is held while the operator talks to the target, then
// put through (the seat's call ends) or back to the caller.
async function consult(action) {
  say("");
  const picked = $("#consult-to").value;
  const to = picked === "number" ? `number:${$("#three-way-number").value.trim()}` : picked;
  try {
    const done = await api("POST", `/api/seats/${me.extension}/${action}`, action === "consult" ? { to } : {});
    const open = action === "consult";
    $("#consult-complete").hidden = !open;
    $("#consult-cancel").hidden = !open;
    const chosen = done.chosen_seat ? ` → 坐席 seat ${done.chosen_seat}` : "";
    say(open ? `咨询中 consulting ${done.consulting}${chosen}` :
      action === "consult-complete" ? `已转接 transferred to ${done.to}` : "已取消 back with the caller");
  } catch (error) { say(error.message); }
}

function consultChoices(targets) {
  const choices = [
    // a queue: the ACD chooses its free seat (queueing/consult.py; 409 if none is free)
    ...(targets.queues || []).map((q) => [`queue:${q}`, `队列空闲坐席 next free in ${q}`]),
    ...(targets.seats || []).filter((s) => s !== me.extension).map((s) => [`seat:${s}`, `坐席 seat ${s}`]),
    ...(targets.emergency || []).map((n) => [`emergency:${n}`, `${n} ${EMERGENCY[n] || ""}`.trim()]),
    ["number", "部门电话 department number"],
  ];
  options($("#consult-to"), choices.map((c) => c[0]), (v) => choices.find((c) => c[0] === v)[1]);
}

function transferChoices(targets) {
  const choices = [
    ...(targets.queues || []).map((q) => [`queue:${q}`, `队列 queue ${q}`]),
    ...(targets.seats || []).filter((s) => s !== me.extension).map((s) => [`seat:${s}`, `坐席 seat ${s}`]),
  ];
  options($("#transfer-to"), choices.map((c) => c[0]), (v) => choices.find((c) => c[0] === v)[1]);
  $("#handover").replaceChildren(...(targets.emergency || []).map((number) => {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "emergency";
    button.dataset.to = `emergency:${number}`;
    button.textContent = `${number} ${EMERGENCY[number] || ""}`.trim();
    button.addEventListener("click", () => transfer(button.dataset.to));
    return button;
  }));
}

function onLive(name, handler) {
  return [name, (event) => { try { handler(JSON.parse(event.data)); } catch (error) { say(error.message); } }];
}

async function start() {
  me = await api("GET", "/api/me");
  const desk = await api("GET", "/api/desk");
  $("#who").textContent = desk.user;
  $("#seat").textContent = desk.seat;
  setState(desk.state, desk.reason);
  options($("#pause-reason"), desk.pause_reasons);
  options($("#category"), desk.categories);
  options($("#lead_department"), ["", ...desk.departments]);
  transferChoices(desk.transfer_targets || {});
  consultChoices(desk.transfer_targets || {});
  if (desk.call) showCall(desk.call);
  else if (desk.consultation) showConsultation(desk.consultation);

  $("#seat-login").addEventListener("click", () => seat("login", { pin: $("#pin").value }));
  $("#seat-available").addEventListener("click", () => seat("resume"));
  $("#seat-pause").addEventListener("click", () => seat("pause", { reason: $("#pause-reason").value }));
  $("#seat-ready").addEventListener("click", () => seat("ready"));
  $("#seat-logout").addEventListener("click", () => seat("logout"));
  $("#sign-out").addEventListener("click", async () => {
    await fetch("/logout", { method: "POST", headers: { "X-CSRF-Token": me.csrf_token } });
    location.assign("/login");
  });
  for (const name of FIELDS) {
    $(`#${name}`).addEventListener(name === "confidential" || name === "no_revisit" ? "change" : "input", typed);
  }
  $("#order").addEventListener("submit", (event) => event.preventDefault());
  $("#kb").addEventListener("submit", (event) => {
    event.preventDefault();
    const q = $("#kb-q").value.trim();
    if (q) knowledge(`/api/knowledge?q=${encodeURIComponent(q)}&limit=5`);
  });
  $("#dispatch").addEventListener("click", () =>
    act("dispatch", { lead_department: $("#lead_department").value }));
  $("#answer").addEventListener("click", () => act("answer", { answer: $("#answer-text").value }));
  $("#merge").addEventListener("click", () => act("merge", { into: $("#merge-into").value }));
  $("#transfer").addEventListener("click", () => transfer($("#transfer-to").value));
  $("#three-way").addEventListener("click", () =>
    transfer(`three-way:${$("#three-way-number").value.trim()}`));
  for (const action of ["consult", "consult-complete", "consult-cancel"]) {
    $(`#${action}`).addEventListener("click", () => consult(action));
  }

  const live = new EventSource("/api/live?topics=call,call-ended,consult,order,acd");
  live.addEventListener(...onLive("call", showCall));
  live.addEventListener(...onLive("consult", showConsultation));
  live.addEventListener(...onLive("call-ended", (ended) => {
    if (call && ended.call_id === call.call_id) $("#call-ended").hidden = false;
  }));
  live.addEventListener(...onLive("order", (order) => {
    if (call && order.number === call.order.number) { call.order = order; showOrder(order); }
  }));
  live.addEventListener(...onLive("acd", (event) => {
    if (event.type !== "seat" || event.seat !== me.extension) return;
    setState(event.state, event.reason);
    if (event.state !== "ringing") $("#consultation").hidden = true;  // ended or put through
  }));
  live.addEventListener("open", () => { document.body.dataset.live = "open"; });
}

start().catch((error) => say(error.message));
