// The agent desktop: one screen whatever the channel.
"use strict";

const desk = {
  me: null,            // the agent this user works as
  offer: null,         // {offer, task, channel, queue, expires_at, context}
  tasks: new Map(),    // interaction id -> {interaction, context, messages}
  current: null,       // the interaction on screen
  agents: new Map(),   // agent id -> state
  queues: [],
  consults: [],        // consult messages sent and received since the page opened
};

const TEXT_CHANNELS = new Set(["chat", "email", "sms", "whatsapp", "messenger"]);

function $(id) { return document.getElementById(id); }

async function start() {
  const session = await api("GET", "/session");
  if (session.role !== "agent") { window.location.href = "/wallboard"; return; }
  desk.me = session.agent;
  $("who").textContent = `${session.name} (${session.agent})`;
  desk.queues = (await api("GET", "/queues")).map((q) => q.name);
  await refreshAgents();
  // Work held before this page opened.
  for (const offer of await api("GET", "/offers")) {
    const interaction = await api("GET", `/interactions/${offer.interaction}`);
    showOffer({ offer: offer.offer, task: offer.interaction, channel: interaction.channel,
                queue: interaction.queue, expires_at: null });
  }
  desk.send = openStream(onMessage, (up) => {
    $("link").textContent = up ? "live" : "reconnecting…";
    // What changed while the socket was not there yet (or was down).
    if (up) refreshAgents().catch(showError);
  });
  setInterval(tick, 250);
}

async function refreshAgents() {
  for (const agent of await api("GET", "/agents")) desk.agents.set(agent.id, agent.state);
  renderAgents();
}

function renderAgents() {
  const rows = [];
  for (const [id, state] of [...desk.agents.entries()].sort()) {
    if (id === desk.me) continue;
    rows.push(el("tr", {}, el("td", {}, id), el("td", {}, el("span", { class: `state ${state}` }, state.replace("_", " ")))));
  }
  $("colleagues").replaceChildren(...rows);
  const mine = desk.agents.get(desk.me) || "offline";
  const select = $("state");
  if (mine === "away") { /* keep the chosen reason */ if (!select.value.startsWith("away")) select.value = "away:break"; }
  else select.value = mine;
  $("end-wrap-up").hidden = mine !== "wrap_up";
  // Transfer targets: queues, then colleagues who are available.
  const targets = [el("option", { value: "" }, "Transfer to…")];
  for (const q of desk.queues) targets.push(el("option", { value: `queue:${q}` }, `Queue ${q}`));
  for (const [id, state] of desk.agents) {
    if (id !== desk.me && state === "available") targets.push(el("option", { value: `agent:${id}` }, `Agent ${id}`));
  }
  $("transfer-to").replaceChildren(...targets);
  // Anyone but me can be consulted; who is available first.
  const chosen = $("consult-to").value;
  const colleagues = [...desk.agents.entries()].filter(([id]) => id !== desk.me)
    .sort(([a, x], [b, y]) => (x === "available" ? 0 : 1) - (y === "available" ? 0 : 1) || a.localeCompare(b));
  $("consult-to").replaceChildren(
    el("option", { value: "" }, "Consult…"),
    ...colleagues.map(([id, state]) => el("option", { value: id }, `${id} (${state.replace("_", " ")})`)));
  if (chosen) $("consult-to").value = chosen;
}

function renderConsults() {
  const nodes = desk.consults.map((c) => {
    const mine = c.sender === desk.me;
    const who = mine ? `me → ${c.to}` : `${c.sender} → me`;
    return el("div", { class: `msg ${mine ? "outbound" : "inbound"}` },
      el("div", { class: "meta" }, `${who} · ${clock(c.at)}`), c.body);
  });
  $("consults").replaceChildren(...nodes);
  $("consults").scrollTop = $("consults").scrollHeight;
}

function onMessage(message) {
  if (message.signal !== undefined) {
    if (message.signal.typing && message.signal.interaction === desk.current) {
      $("typing").textContent = "The customer is typing…";
      clearTimeout(desk.typingTimer);
      desk.typingTimer = setTimeout(() => { $("typing").textContent = ""; }, 3000);
    }
    return;
  }
  if (message.context !== undefined) {
    if (desk.offer && desk.offer.offer === message.offer) {
      desk.offer.context = message.context;
      renderOffer();
      renderCustomer(message.context);
    }
    return;
  }
  const event = message.event;
  if (!event) return;
  const data = event.data;
  switch (event.type) {
    case "omniroute.offer_made":
      if (data.agent === desk.me) showOffer(data);
      break;
    case "omniroute.offer_rescinded":
    case "omniroute.offer_rejected":
    case "omniroute.offer_timed_out":
      if (desk.offer && desk.offer.offer === data.offer) hideOffer();
      break;
    case "omniroute.task_assigned":
      if (data.agent === desk.me) openTask(data.task).catch(showError);
      break;
    case "omniroute.message_added": {
      const task = desk.tasks.get(data.message.interaction_id);
      if (task && !task.messages.some((m) => m.id === data.message.id)) {
        task.messages.push(data.message);
        if (desk.current === data.message.interaction_id) renderTranscript(task);
      }
      break;
    }
    case "omniroute.task_completed":
    case "omniroute.task_cancelled":
    case "omniroute.task_transferred":
      closeTask(data.task);
      break;
    case "omniroute.task_held":
    case "omniroute.task_resumed": {
      const task = desk.tasks.get(data.task);
      if (task) {
        task.interaction.held_at = event.type === "omniroute.task_held" ? data.at : null;
        if (desk.current === data.task) renderHold(task);
      }
      break;
    }
    case "omniroute.consult_sent":
      if (!desk.consults.some((c) => c.id === data.id)) {
        desk.consults.push(data);
        renderConsults();
      }
      break;
    case "omniroute.agent_state_changed":
      desk.agents.set(data.agent, data.status.state);
      renderAgents();
      break;
  }
}

function showOffer(offer) {
  desk.offer = Object.assign({ context: null }, offer);
  renderOffer();
}

function hideOffer() {
  desk.offer = null;
  $("offer").hidden = true;
}

function renderOffer() {
  const offer = desk.offer;
  $("offer").hidden = false;
  $("offer-channel").textContent = offer.channel;
  $("offer-queue").textContent = `queue ${offer.queue}`;
  const customer = offer.context ? offer.context.customer : null;
  $("offer-customer").textContent = customer ? (customer.display_name || customer.id) : "";
}

function tick() {
  if (!desk.offer || !desk.offer.expires_at) { $("offer-countdown").textContent = ""; return; }
  const left = desk.offer.expires_at - Date.now() / 1000;
  $("offer-countdown").textContent = left > 0 ? `${Math.ceil(left)} s` : "expiring";
}

async function openTask(id) {
  const interaction = await api("GET", `/interactions/${id}`);
  const context = await api("GET", `/customers/${interaction.customer_id}/context`);
  const messages = await api("GET", `/interactions/${id}/messages`);
  desk.tasks.set(id, { interaction, context, messages });
  if (desk.offer && desk.offer.task === id) hideOffer();
  desk.current = id;
  render();
}

function closeTask(id) {
  if (!desk.tasks.has(id)) return;
  desk.tasks.delete(id);
  if (desk.current === id) desk.current = desk.tasks.size ? [...desk.tasks.keys()][0] : null;
  render();
}

function render() {
  const items = [];
  for (const [id, task] of desk.tasks) {
    items.push(el("li", {}, el("button", { onclick: () => { desk.current = id; render(); } },
      `${task.interaction.channel}: ${task.context.customer.display_name || task.context.customer.id}`)));
  }
  $("work").replaceChildren(...items);
  const task = desk.current ? desk.tasks.get(desk.current) : null;
  $("conv-empty").hidden = !!task;
  $("conv-body").hidden = !task;
  if (!task) { $("conv-title").textContent = ""; return; }
  const i = task.interaction;
  $("conv-title").textContent = `${i.channel} · ${i.queue}`;
  const text = TEXT_CHANNELS.has(i.channel);
  $("reply-box").hidden = !text;
  $("voice-box").hidden = text;
  renderHold(task);
  renderTranscript(task);
  renderCustomer(task.context);
}

function renderHold(task) {
  const held = task.interaction.held_at;
  $("hold").textContent = held ? "Resume" : "Hold";
  $("hold-state").textContent = held ? `on hold since ${clock(held)}` : "";
}

function renderTranscript(task) {
  // The open conversation across channels, then anything said on this interaction since.
  const seen = new Set();
  const all = [];
  for (const m of [...task.context.transcript, ...task.messages]) {
    if (!seen.has(m.id)) { seen.add(m.id); all.push(m); }
  }
  all.sort((a, b) => a.at - b.at);
  // Which channel each message came on, from the timeline.
  const channels = new Map(task.context.timeline.map((e) => [e.interaction.id, e.interaction.channel]));
  channels.set(task.interaction.id, task.interaction.channel);
  const customer = task.context.customer;
  const nodes = all.map((m) => {
    const who = m.author === customer.id ? (customer.display_name || "customer") : m.author;
    const on = channels.get(m.interaction_id) || "";
    return el("div", { class: `msg ${m.direction}` }, el("div", { class: "meta" }, `${who} · ${on} · ${clock(m.at)}`), m.body);
  });
  $("transcript").replaceChildren(...nodes);
  $("transcript").scrollTop = $("transcript").scrollHeight;
}

function renderCustomer(context) {
  const c = context.customer;
  $("customer").replaceChildren(
    el("div", {}, el("strong", {}, c.display_name || c.id)),
    ...context.identities.map((i) => el("div", { class: "muted" }, `${i.kind}: ${i.value}`)),
    el("div", { class: "muted" }, `last agent: ${context.last_agent || "–"}`),
    ...context.customer_notes.map((n) => el("div", {}, `note: ${n.body}`)),
  );
  const entries = context.timeline.map((entry) => {
    const i = entry.interaction;
    return el("li", {},
      el("strong", {}, i.channel), ` ${i.direction} · ${clock(i.created_at)} · ${i.status}`,
      i.agent ? ` · ${i.agent}` : "", i.disposition ? ` · ${i.disposition}` : "",
      ...entry.notes.map((n) => el("div", { class: "muted" }, `“${n.body}” (${n.author})`)));
  });
  $("timeline").replaceChildren(...entries);
}

async function act(fn) {
  try { await fn(); } catch (error) { showError(error); }
}

$("accept").addEventListener("click", () => act(async () => {
  const offer = desk.offer;
  await api("POST", `/offers/${offer.offer}/accept`);
  hideOffer();
  await openTask(offer.task);
}));
$("reject").addEventListener("click", () => act(async () => {
  await api("POST", `/offers/${desk.offer.offer}/reject`);
  hideOffer();
}));
$("reply").addEventListener("input", () => {
  // The customer sees "typing" on channels that show it; at most once every two seconds.
  if (!desk.current || Date.now() - (desk.typedAt || 0) < 2000) return;
  desk.typedAt = Date.now();
  if (desk.send) desk.send({ op: "typing", task: desk.current });
});
$("send").addEventListener("click", () => act(async () => {
  const body = $("reply").value.trim();
  if (!body) return;
  await api("POST", `/interactions/${desk.current}/messages`, { body, direction: "outbound" });
  $("reply").value = "";
}));
$("add-note").addEventListener("click", () => act(async () => {
  const body = $("note").value.trim();
  if (!body) return;
  await api("POST", `/interactions/${desk.current}/notes`, { body });
  $("note").value = "";
}));
$("transfer").addEventListener("click", () => act(async () => {
  const [kind, name] = $("transfer-to").value.split(":");
  if (!name) return;
  await api("POST", `/tasks/${desk.current}/transfer`, kind === "queue" ? { to_queue: name } : { to_agent: name });
}));
$("hold").addEventListener("click", () => act(async () => {
  const task = desk.tasks.get(desk.current);
  if (!task) return;
  await api("POST", `/tasks/${desk.current}/${task.interaction.held_at ? "resume" : "hold"}`);
}));
$("consult-send").addEventListener("click", () => act(async () => {
  const to = $("consult-to").value;
  const body = $("consult-body").value.trim();
  if (!to || !body) return;
  const sent = await api("POST", "/consults", { to, body, task: desk.current });
  $("consult-body").value = "";
  if (!desk.consults.some((c) => c.id === sent.id)) { desk.consults.push(sent); renderConsults(); }
}));
$("complete").addEventListener("click", () => act(async () => {
  const note = $("note").value.trim();
  await api("POST", `/tasks/${desk.current}/complete`, {
    disposition: $("disposition").value, resolved: $("resolved").checked, note: note || null,
  });
  $("note").value = "";
}));
$("state").addEventListener("change", () => act(async () => {
  const [state, reason] = $("state").value.split(":");
  await api("PUT", `/agents/${desk.me}/state`, reason ? { state, reason } : { state });
  desk.agents.set(desk.me, state);
  renderAgents();
}));
$("end-wrap-up").addEventListener("click", () => act(() => api("POST", `/agents/${desk.me}/wrap-up/end`)));
$("logout").addEventListener("click", logout);

start().catch(showError);
