// omniroute web chat widget: <script src="https://centre.example/api/v1/channels/chat/widget.js" async></script>
// Plain JavaScript, no build step, no dependency. It keeps a random visitor id in localStorage.
(function () {
  "use strict";
  var script = document.currentScript;
  var base = script.src.replace(/\/widget\.js(\?.*)?$/, "");
  var KEY = "omniroute-visitor:" + base;
  var visitor = localStorage.getItem(KEY);
  if (!visitor) {
    var bytes = new Uint8Array(18);
    crypto.getRandomValues(bytes);
    visitor = btoa(String.fromCharCode.apply(null, bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
    localStorage.setItem(KEY, visitor);
  }
  var css = "#omniroute-chat{position:fixed;right:16px;bottom:16px;width:320px;font:14px system-ui,sans-serif;" +
    "background:#fff;border:1px solid #ccd;border-radius:10px;box-shadow:0 4px 18px rgba(0,0,0,.15);z-index:2147483000}" +
    "#omniroute-chat header{background:#1d3f8f;color:#fff;padding:10px 12px;border-radius:10px 10px 0 0;font-weight:600}" +
    "#omniroute-chat .body{padding:10px;display:grid;gap:6px}" +
    "#omniroute-chat .log{height:220px;overflow-y:auto;display:grid;gap:4px;align-content:start}" +
    "#omniroute-chat .m{padding:6px 9px;border-radius:8px;max-width:85%;white-space:pre-wrap}" +
    "#omniroute-chat .visitor{background:#dbe6ff;justify-self:end}#omniroute-chat .agent{background:#eef0f3}" +
    "#omniroute-chat input,#omniroute-chat textarea{width:100%;box-sizing:border-box;padding:6px;font:inherit}" +
    "#omniroute-chat button{padding:6px 10px;font:inherit}#omniroute-chat .note{color:#6b7380;font-size:12px}";
  var style = document.createElement("style");
  style.textContent = css;
  document.head.appendChild(style);
  var box = document.createElement("div");
  box.id = "omniroute-chat";
  box.innerHTML =
    '<header id="omniroute-title">Chat</header><div class="body">' +
    '<form id="omniroute-start"><input id="omniroute-name" placeholder="Your name" autocomplete="name">' +
    '<input id="omniroute-email" type="email" placeholder="E-mail (optional)" autocomplete="email">' +
    '<button type="submit">Start chat</button></form>' +
    '<div id="omniroute-talk" hidden><div class="log" id="omniroute-log"></div>' +
    '<textarea id="omniroute-text" rows="2" placeholder="Write a message"></textarea>' +
    '<button id="omniroute-send">Send</button>' +
    '<div id="omniroute-callme" hidden><input id="omniroute-phone" type="tel" placeholder="Your phone number">' +
    '<button id="omniroute-call">Call me</button></div></div>' +
    '<div class="note" id="omniroute-note"></div></div>';
  document.body.appendChild(box);
  function $(id) { return document.getElementById("omniroute-" + id); }
  var socket = null, started = false, seen = {}, counter = 0, queue = [], typedAt = 0, typingTimer = null;

  function show(id, from, text) {
    if (id && seen[id]) return;
    if (id) seen[id] = true;
    var m = document.createElement("div");
    m.className = "m " + from;
    m.textContent = text;
    $("log").appendChild(m);
    $("log").scrollTop = $("log").scrollHeight;
  }
  function send(command) {
    if (socket && socket.readyState === 1) socket.send(JSON.stringify(command)); else queue.push(command);
  }
  function talk() {
    $("start").hidden = true;
    $("talk").hidden = false;
  }
  function connect() {
    socket = new WebSocket(base.replace(/^http/, "ws") + "/socket?visitor=" + encodeURIComponent(visitor));
    socket.onopen = function () {
      $("note").textContent = "";
      while (queue.length) socket.send(JSON.stringify(queue.shift()));
    };
    socket.onmessage = function (event) {
      var data = JSON.parse(event.data);
      if (data.hello) {
        $("title").textContent = data.hello.title;
        $("callme").hidden = !data.hello.callback;
        // The transcript as stored: what was shown before a reconnection is redrawn from it.
        $("log").textContent = "";
        seen = {};
        if (data.hello.transcript.length) { started = true; talk(); }
        data.hello.transcript.forEach(function (m) { show(m.id, m.from, m.text); });
      } else if (data.ack) {
        show("local-" + data.ack, "visitor", data.text);
      } else if (data.message) {
        show(data.message.id, data.message.from, data.message.text);
      } else if (data.typing) {
        $("note").textContent = "The agent is typing…";
        clearTimeout(typingTimer);
        typingTimer = setTimeout(function () { $("note").textContent = ""; }, 3000);
      } else if (data.callback) {
        $("note").textContent = "We will call you back shortly.";
      } else if (data.error) {
        $("note").textContent = data.error;
      }
    };
    socket.onclose = function () {
      $("note").textContent = "Reconnecting…";
      setTimeout(connect, 1000);
    };
  }
  $("start").addEventListener("submit", function (event) {
    event.preventDefault();
    var start = { op: "start" };
    if ($("name").value.trim()) start.name = $("name").value.trim();
    if ($("email").value.trim()) start.email = $("email").value.trim();
    send(start);
    started = true;
    talk();
  });
  $("send").addEventListener("click", function () {
    var text = $("text").value.trim();
    if (!text) return;
    counter += 1;
    send({ op: "message", id: Date.now().toString(36) + "-" + counter, text: text });
    $("text").value = "";
    typedAt = 0;  // the next keystroke says "typing" again at once
  });
  $("text").addEventListener("input", function () {
    // At most one signal every two seconds while the visitor types.
    if (Date.now() - typedAt < 2000) return;
    typedAt = Date.now();
    if (socket && socket.readyState === 1) socket.send(JSON.stringify({ op: "typing" }));
  });
  $("call").addEventListener("click", function () {
    var phone = $("phone").value.trim();
    if (phone) send({ op: "callback", phone: phone });
  });
  connect();
})();
