// The supervisor's wallboard: live figures each second, agents, the day by interval.
"use strict";

const wall = { waiting: [], agents: [], canChangeStates: false };

function $(id) { return document.getElementById(id); }

async function start() {
  const session = await api("GET", "/session");
  $("who").textContent = `${session.name} (${session.role})`;
  wall.canChangeStates = session.scopes.includes("agents:write") && session.role !== "agent";
  openStream((message) => { if (message.figures) showFigures(message.figures); },
             (up) => { $("link").textContent = up ? "live" : "reconnecting…"; });
  await Promise.all([refreshAgents(), refreshDay()]);
  setInterval(() => refreshAgents().catch(showError), 2000);
  setInterval(() => refreshDay().catch(showError), 15000);
  setInterval(renderAgents, 1000);
}

function tile(label, value, tone) {
  return el("div", { class: `tile ${tone || ""}`, "data-tile": label }, el("div", { class: "value" }, value), el("div", { class: "label" }, label));
}

function showFigures(f) {
  const o = f.overall;
  const slTone = o.service_level === null ? "" : o.service_level >= 0.8 ? "good" : "bad";
  $("tiles").replaceChildren(
    tile("service level", percent(o.service_level), slTone),
    tile("ASA", duration(o.asa)),
    tile("abandoned", percent(o.abandon_rate), o.abandon_rate > 0.05 ? "bad" : ""),
    tile("waiting", o.waiting, o.waiting > 5 ? "bad" : ""),
    tile("longest wait", duration(o.longest_wait)),
    tile("offered", o.offered),
    tile("answered", o.answered),
    tile("available agents", o.available === null ? "–" : o.available),
  );
  $("window").textContent = `last ${Math.round(f.window_seconds / 60)} minutes`;
  $("queues").replaceChildren(...rows(f.queues));
  reportChoices(Object.keys(f.queues), Object.keys(f.channels));
  $("channels").replaceChildren(...rows(f.channels));
  wall.waiting.push(o.waiting);
  if (wall.waiting.length > 600) wall.waiting.shift();
  drawLine($("waiting"), wall.waiting, "#c77700");
}

function rows(dimensions) {
  return Object.entries(dimensions).map(([name, d]) => el("tr", { "data-name": name },
    el("td", {}, name), el("td", {}, percent(d.service_level)), el("td", {}, duration(d.asa)),
    el("td", {}, percent(d.abandon_rate)), el("td", {}, d.waiting), el("td", {}, duration(d.longest_wait)),
    el("td", {}, d.offered), el("td", {}, d.answered)));
}

async function refreshAgents() {
  wall.agents = await api("GET", "/agents");
  renderAgents();
}

function renderAgents() {
  const now = Date.now() / 1000;
  $("agents").replaceChildren(...wall.agents.map((a) => {
    let state = el("span", { class: `state ${a.state}` }, a.state.replace("_", " ") + (a.reason ? `: ${a.reason}` : ""));
    if (wall.canChangeStates) {
      const choices = ["available", "away:break", "offline"];
      const current = a.state === "away" ? "away:break" : a.state;
      const options = choices.map((v) => el("option", { value: v }, v.replace(":", ": ")));
      if (!choices.includes(current)) options.unshift(el("option", { value: current, disabled: "" }, current.replace("_", " ")));
      const select = el("select", { "aria-label": `state of ${a.id}`, onchange: (e) => setState(a.id, e.target.value) }, ...options);
      select.value = current;
      state = el("span", {}, state, " ", select);
    }
    return el("tr", { "data-agent": a.id }, el("td", {}, a.id), el("td", {}, a.team || "–"), el("td", {}, state),
      el("td", {}, duration(now - a.since)), el("td", {}, a.tasks), el("td", {}, `${a.used}/${a.capacity}`));
  }));
}

async function setState(agent, value) {
  const [state, reason] = value.split(":");
  try {
    await api("PUT", `/agents/${agent}/state`, reason ? { state, reason } : { state });
    await refreshAgents();
  } catch (error) { showError(error); }
}

// What the interval report can be of: the centre, each queue, channel, team and agent.
function reportChoices(queues, channels) {
  const teams = [...new Set(wall.agents.map((a) => a.team).filter((t) => t))].sort();
  const choices = [["overall:", "the centre"],
    ...queues.map((q) => [`queue:${q}`, `queue ${q}`]), ...channels.map((c) => [`channel:${c}`, `channel ${c}`]),
    ...teams.map((t) => [`team:${t}`, `team ${t}`]), ...wall.agents.map((a) => [`agent:${a.id}`, `agent ${a.id}`])];
  const select = $("report-of");
  const key = choices.map(([v]) => v).join("|");
  if (select.dataset.key === key) return;
  const chosen = select.value;
  select.replaceChildren(...choices.map(([v, label]) => el("option", { value: v }, label)));
  select.dataset.key = key;
  select.value = choices.some(([v]) => v === chosen) ? chosen : "overall:";
}

async function refreshDay() {
  const since = Date.now() / 1000 - 24 * 3600;
  const [dimension, name] = $("report-of").value.split(/:(.*)/s);
  const of = `dimension=${dimension}&name=${encodeURIComponent(name || "")}`;
  $("csv").href = `/api/v1/reports/intervals.csv?${of}&start=${Math.floor(since)}`;
  // Erlang C staffing exists for the centre, a queue or a channel: it needs the offered load.
  const staffed = ["overall", "queue", "channel"].includes(dimension);
  const [intervals, staffing] = await Promise.all([
    api("GET", `/reports/intervals?${of}&start=${since}`),
    staffed ? api("GET", `/reports/staffing?${of}&start=${since}`) : Promise.resolve([]),
  ]);
  const need = new Map(staffing.map((s) => [s.start, s]));
  $("intervals").replaceChildren(...intervals.slice(-24).reverse().map((r) => {
    const s = need.get(r.start);
    return el("tr", {}, el("td", {}, clock(r.start)), el("td", {}, r.offered), el("td", {}, r.answered),
      el("td", {}, r.abandoned), el("td", {}, percent(r.service_level)), el("td", {}, duration(r.asa)),
      el("td", {}, duration(r.aht)), el("td", {}, s ? s.required_agents : "–"),
      el("td", {}, s ? s.actual_agents.toFixed(1) : "–"));
  }));
  drawBars($("day"), intervals.map((r) => r.offered), intervals.map((r) => r.service_level));
}

function drawLine(canvas, values, colour) {
  const g = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height;
  g.clearRect(0, 0, w, h);
  const top = Math.max(1, ...values);
  g.strokeStyle = colour;
  g.lineWidth = 2;
  g.beginPath();
  values.forEach((v, i) => {
    const x = (i / Math.max(1, values.length - 1)) * (w - 2) + 1;
    const y = h - 4 - (v / top) * (h - 20);
    if (i === 0) g.moveTo(x, y); else g.lineTo(x, y);
  });
  g.stroke();
  g.fillStyle = "#6b7380";
  g.fillText(`max ${top}`, 4, 12);
}

function drawBars(canvas, volumes, levels) {
  const g = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height;
  g.clearRect(0, 0, w, h);
  if (!volumes.length) { g.fillStyle = "#6b7380"; g.fillText("no closed interval yet", 4, 14); return; }
  const top = Math.max(1, ...volumes);
  const step = w / volumes.length;
  volumes.forEach((v, i) => {
    g.fillStyle = "#c9d6f5";
    g.fillRect(i * step + 1, h - (v / top) * (h - 20), Math.max(1, step - 2), (v / top) * (h - 20));
  });
  g.strokeStyle = "#1a8f4c";
  g.lineWidth = 2;
  g.beginPath();
  let started = false;
  levels.forEach((l, i) => {
    if (l === null) return;
    const x = i * step + step / 2, y = h - 4 - l * (h - 20);
    if (!started) { g.moveTo(x, y); started = true; } else g.lineTo(x, y);
  });
  g.stroke();
  g.fillStyle = "#6b7380";
  g.fillText(`volume (max ${top}) · service level (green)`, 4, 12);
}

$("report-of").addEventListener("change", () => refreshDay().catch(showError));
$("logout").addEventListener("click", logout);
start().catch(showError);
