// Shared by the pages: calls to /api/v1 with the session cookie, and the live stream.
"use strict";

const API = "/api/v1";

async function api(method, path, body) {
  const options = { method, headers: {}, credentials: "same-origin" };
  if (body !== undefined) {
    options.headers["content-type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const reply = await fetch(API + path, options);
  if (reply.status === 401 && !(method === "POST" && path === "/session")) {
    window.location.href = "/";
    throw new Error("not logged in");
  }
  const text = await reply.text();
  const value = text ? JSON.parse(text) : null;
  if (!reply.ok) {
    const detail = value && value.detail ? value.detail : reply.statusText;
    const extra = value && value.extra ? " " + value.extra.map((e) => `${e.key}: ${e.message}`).join("; ") : "";
    throw new Error(detail + extra);
  }
  return value;
}

// The live stream; reconnects after a drop. onMessage gets each parsed message.
// Returns send(command): a command on the socket while it is open (dropped otherwise).
function openStream(onMessage, onState) {
  const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + API + "/stream";
  let retry = 500;
  let socket = null;
  function connect() {
    socket = new WebSocket(url);
    socket.onopen = () => { retry = 500; if (onState) onState(true); };
    socket.onmessage = (m) => onMessage(JSON.parse(m.data));
    socket.onclose = () => {
      if (onState) onState(false);
      setTimeout(connect, retry);
      retry = Math.min(retry * 2, 10000);
    };
  }
  connect();
  return (command) => { if (socket && socket.readyState === 1) socket.send(JSON.stringify(command)); };
}

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== null && v !== undefined) node.setAttribute(k, v);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function clock(seconds) {
  return new Date(seconds * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

function duration(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  seconds = Math.max(0, Math.round(seconds));
  const m = Math.floor(seconds / 60), s = seconds % 60;
  return m ? `${m}m ${String(s).padStart(2, "0")}s` : `${s}s`;
}

function percent(value) {
  return value === null || value === undefined ? "–" : `${Math.round(value * 100)}%`;
}

function showError(error) {
  const bar = document.getElementById("error");
  if (!bar) return;
  bar.textContent = error.message || String(error);
  bar.hidden = false;
  setTimeout(() => { bar.hidden = true; }, 6000);
}

async function logout() {
  try { await api("DELETE", "/session"); } finally { window.location.href = "/"; }
}
