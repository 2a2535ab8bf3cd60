// neuromusic dashboard: one card per device, fed by Server-Sent Events from the dashboard server.
// Every payload arrives already checked and bounded by the server (payloads.py); text goes in with textContent only.
"use strict";

const WINDOW_S = 60;   // seconds of score history in the chart
const MAX_POINTS = 600;
const LOW_CONFIDENCE = 0.5;  // below this the score is drawn grey: too few good channels to trust it
const COLORS = {line: "#2e9d57", low: "#b4b9c2", calibration: "rgba(201,138,18,0.22)",
                poor: "rgba(194,24,122,0.16)", threshold: "#3b7dd8", grid: "#e2e4e8", text: "#667"};
const devices = new Map();  // device id -> card state
const answered = new Set();  // command ids whose result already arrived (it can beat the POST's own reply)
// controls: the server's control table (name, label, unit, decimals), one reading per row
let settings = {relaxed_threshold: 0.6, commands: ["pause", "resume", "marker"], controls: []};
let brokerConnected = false;

function card(id) {
  let d = devices.get(id);
  if (d) return d;
  const el = document.getElementById("device-template").content.firstElementChild.cloneNode(true);
  el.id = "device-" + id;
  el.dataset.device = id;
  el.querySelector(".name").textContent = id;
  addControlRows(el.querySelector("dl.controls"));
  for (const button of el.querySelectorAll("button[data-cmd]")) {
    button.addEventListener("click", () => command(id, button.dataset.cmd, el));
  }
  document.getElementById("devices").appendChild(el);
  d = {el, scores: [], latest: {}, session: {number: 0}, previous: [], events: [], lastSeen: null};
  devices.set(id, d);
  const n = devices.size;
  document.getElementById("count").textContent = n + (n === 1 ? " device" : " devices");
  return d;
}

function addControlRows(list) {
  const first = list.firstElementChild;
  for (const c of settings.controls) {
    const dt = document.createElement("dt"), dd = document.createElement("dd");
    dt.textContent = c.label;
    dd.className = "control " + c.name;
    dd.dataset.control = c.name;
    dd.textContent = "–";
    list.insertBefore(dt, first);
    list.insertBefore(dd, first);
  }
}

function showControls(el, p) {
  for (const c of settings.controls) {
    const dd = el.querySelector(`dd[data-control="${c.name}"]`);
    if (dd) dd.textContent = fmt(p[c.name], c.decimals) + (c.unit && typeof p[c.name] === "number" ? " " + c.unit : "");
  }
}

async function command(id, cmd, el) {
  const body = {device: id, cmd};
  if (cmd === "marker") body.label = el.querySelector(".label").value.trim() || "marker from dashboard";
  const out = el.querySelector(".result");
  try {
    const response = await fetch("/api/cmd", {method: "POST", headers: {"Content-Type": "application/json"},
                                             body: JSON.stringify(body)});
    const reply = await response.json();
    if (!response.ok) out.textContent = `refused: ${reply.error}`;
    else if (!answered.has(reply.id)) out.textContent = `sent ${cmd} (${reply.id})…`;
  } catch (error) {
    out.textContent = "error: " + error;
  }
}

function fmt(value, digits) {
  return typeof value === "number" ? value.toFixed(digits) : "–";
}

function clock(unix) {
  return typeof unix === "number" ? new Date(unix * 1000).toLocaleTimeString() : "?";
}

function ago(unix) {
  if (typeof unix !== "number") return "never";
  const s = Math.max(0, Date.now() / 1000 - unix);
  if (s < 90) return `${Math.round(s)} s ago`;
  if (s < 5400) return `${Math.round(s / 60)} min ago`;
  return `${(s / 3600).toFixed(1)} h ago`;
}

function startSession(d, session) {
  // A new run of the daemon: its chart, events and readings start empty; the old events move under a heading.
  if (d.session.number && session.number !== d.session.number) {
    d.previous.unshift({number: d.session.number, started_unix: d.session.started_unix, events: d.events});
    d.previous = d.previous.slice(0, 2);
    d.events = [];
    d.scores = [];
    d.bars = [];
    const status = d.latest.status;
    d.latest = status ? {status} : {};
    resetReadings(d.el);
    drawEvents(d);
  }
  d.session = session;
}

function resetReadings(el) {
  for (const sel of ["dd.control", ".bar-info", ".chords", ".score-value"]) {
    for (const item of el.querySelectorAll(sel)) item.textContent = "–";
  }
  el.querySelector(".confidence").textContent = "";
  el.querySelector(".bands").replaceChildren();
  el.querySelector(".bad-channels").replaceChildren();
  el.querySelector(".quality").textContent = "no signal report yet";
  el.querySelector(".result").textContent = "";
}

function apply(d, topic, p) {
  d.latest[topic] = p;
  const el = d.el;
  if (topic === "status") {
    const badge = el.querySelector(".state");
    badge.textContent = p.state;
    badge.className = "badge state " + p.state;
    el.classList.toggle("offline", p.state === "offline");
    el.dataset.state = p.state;
    showScore(d);
  } else if (topic === "score") {
    d.scores.push([p.unix, p.value, p.confidence, p.state]);
    if (d.scores.length > MAX_POINTS) d.scores.splice(0, d.scores.length - MAX_POINTS);
    showScore(d);
  } else if (topic === "controls") {
    showControls(el, p);
  } else if (topic === "bands") {
    drawBands(el.querySelector(".bands"), p);
  } else if (topic === "quality") {
    showQuality(el, p);
  } else if (topic === "bar") {
    d.bars = (d.bars || []).concat([p]).slice(-4);  // shown when it starts sounding (frame() picks it)
  } else if (topic === "events") {
    d.events.push(p);
    if (d.events.length > 20) d.events.shift();
    drawEvents(d);
  } else if (topic === "cmd/result") {
    answered.add(p.id);
    el.querySelector(".result").textContent = `${p.cmd || "command"} ${p.id ?? ""}: ` + (p.ok ? "ok" : "error: " + p.error);
  }
  updateButtons(d);
}

function showScore(d) {
  const el = d.el, p = d.latest.score, state = (d.latest.status || {}).state;
  const value = el.querySelector(".score-value"), conf = el.querySelector(".confidence");
  const live = p && state !== "offline" && p.state === "scoring" && typeof p.value === "number";
  value.textContent = live ? fmt(p.value, 2) : "–";
  const low = live && (typeof p.confidence !== "number" || p.confidence < LOW_CONFIDENCE);
  value.classList.toggle("low", low);
  value.classList.toggle("none", !live);
  conf.classList.toggle("low", low);
  if (!p || state === "offline") conf.textContent = "";
  else if (p.state !== "scoring") conf.textContent = p.state === "poor-signal" ? "no usable channel" : p.state;
  else conf.textContent = (low ? "low confidence " : "confidence ") + fmt(p.confidence, 2);
}

function showQuality(el, p) {
  const good = p.good.filter(Boolean).length;
  const quality = el.querySelector(".quality");
  quality.textContent = `${good} of ${p.channels.length} channels good (${fmt((p.quality ?? 0) * 100, 0)} %)` +
    (typeof p.gap_s === "number" && p.gap_s > 0 ? `, gap ${fmt(p.gap_s, 1)} s` : "");
  quality.classList.toggle("poor", p.channels.length > 0 && good === 0);
  const list = el.querySelector(".bad-channels");
  const bad = p.channels.map((name, i) => [name, p.good[i], p.bad_reasons[i]])
    .filter(([, ok]) => !ok).map(([name, , why]) => {
      const li = document.createElement("li");
      li.textContent = `${name}: ${why || "bad"}`;
      return li;
    });
  // Spikes repaired on a usable channel: the channel still counts, but a user checking contacts wants to know.
  const repaired = p.channels.map((name, i) => [name, p.good[i], (p.repaired || [])[i] || 0])
    .filter(([, ok, n]) => ok && n > 0).map(([name, , n]) => {
      const li = document.createElement("li");
      li.className = "repaired";
      li.textContent = `${name}: ${n} spike sample${n === 1 ? "" : "s"} repaired`;
      return li;
    });
  list.replaceChildren(...bad, ...repaired);
}

function showPlayingBar(d) {
  const now = Date.now() / 1000, bars = d.bars || [];
  const started = bars.filter((b) => typeof b.starts_unix !== "number" || b.starts_unix <= now);
  const current = started.length ? started[started.length - 1] : null;
  if (current && current !== d.shownBar) {
    d.shownBar = current;
    showBar(d.el, current);
  }
}

function showBar(el, p) {
  el.querySelector(".bar-info").textContent =
    `${p.index ?? "?"} · ${p.key || "?"} · ${p.meter || "?"}` + (p.repaired ? " · repaired" : "");
  el.querySelector(".bar-info").title = p.abc;
  el.querySelector(".chords").textContent = p.chords.length ? p.chords.join("  ") : "–";
  drawRoll(el.querySelector(".roll"), p);
}

function drawRoll(canvas, p) {
  const ctx = canvas.getContext("2d"), w = canvas.width, h = canvas.height;
  ctx.clearRect(0, 0, w, h);
  if (!p.notes.length) return;
  const beats = p.beats || Math.max(...p.notes.map((n) => n[1] + n[2]), 1);
  const low = Math.min(...p.notes.map((n) => n[0])) - 1, high = Math.max(...p.notes.map((n) => n[0])) + 1;
  const step = (h - 4) / Math.max(1, high - low);
  ctx.fillStyle = "#3b7dd8";
  for (const [pitch, start, duration] of p.notes) {
    const y = h - 2 - (pitch - low) * step;
    ctx.fillRect(start / beats * w, y - Math.max(2, step) / 2, Math.max(2, duration / beats * w - 1), Math.max(2, step));
  }
}

function drawEvents(d) {
  const list = d.el.querySelector(".events");
  list.replaceChildren(...d.events.slice().reverse().map((p) => {
    const li = document.createElement("li");
    li.textContent = `${clock(p.unix)} [${p.kind}] ${p.text}`;
    return li;
  }));
  const title = d.el.querySelector(".events-title");
  title.textContent = d.session.number ? `Events · session ${d.session.number} since ${clock(d.session.started_unix)}`
                                       : "Events";
  d.el.querySelector(".previous").replaceChildren(...d.previous.map((s) => {
    const box = document.createElement("details");
    const summary = document.createElement("summary");
    const count = s.events.length === 1 ? "1 event" : `${s.events.length} events`;
    summary.textContent = `session ${s.number} (from ${clock(s.started_unix)}): ${count}`;
    const ol = document.createElement("ol");
    ol.append(...s.events.slice().reverse().map((p) => {
      const li = document.createElement("li");
      li.textContent = `${clock(p.unix)} [${p.kind}] ${p.text}`;
      return li;
    }));
    box.append(summary, ol);
    return box;
  }));
}

function updateButtons(d) {
  const status = d.latest.status || {};
  const usable = brokerConnected && status.state !== "offline" && status.remote_control !== false;
  for (const button of d.el.querySelectorAll("button[data-cmd]")) {
    button.disabled = !usable || !settings.commands.includes(button.dataset.cmd);
  }
  d.el.querySelector(".label").disabled = !usable;
}

function statusLine(d) {
  const status = d.latest.status || {};
  const parts = [];
  if (status.state === "offline") {
    parts.push(`offline · last seen ${clock(d.lastSeen)} (${ago(d.lastSeen)})`);
  } else if (status.state === "calibrating") {
    const started = d.session.calibration_started, baseline = (d.latest.config || {}).baseline_s;
    const so_far = typeof started === "number" ? Date.now() / 1000 - started : null;
    if (so_far !== null && typeof baseline === "number") {
      const left = baseline - so_far;
      parts.push(left > 0 ? `calibrating · ${Math.ceil(left)} s left` : "calibrating · waiting for enough good signal");
    } else {
      parts.push("calibrating");
    }
  } else if (status.state === "poor-signal") {
    parts.push("poor signal: no usable channel; check the electrodes");
  }
  if (status.detail && status.state !== "offline") parts.push(status.detail);
  if (status.policy) parts.push(`policy ${status.policy}`);
  if (status.remote_control === false) parts.push("remote control off");
  return parts.join(" · ");
}

function drawBands(box, p) {
  const values = p.mean.filter((v) => typeof v === "number");
  const max = Math.max(1e-9, ...values.map(Math.abs));
  box.replaceChildren(...p.bands.map((name, i) => {
    const row = document.createElement("div");
    row.className = "bandrow";
    const label = document.createElement("span");
    label.textContent = name;
    const bar = document.createElement("div");
    bar.className = "bar";
    bar.style.width = (typeof p.mean[i] === "number" ? 60 * Math.abs(p.mean[i]) / max : 0) + "%";
    const value = document.createElement("span");
    value.textContent = fmt(p.mean[i], 2);
    row.append(label, bar, value);
    return row;
  }));
}

function drawChart(d) {
  const canvas = d.el.querySelector(".chart");
  const ctx = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height;
  const left = 34, right = 8, top = 8, bottom = 30, pw = w - left - right, ph = h - top - bottom;
  const now = Date.now() / 1000;
  const x = (t) => left + pw - (now - t) / WINDOW_S * pw;
  const y = (v) => top + (1 - v) * ph;
  ctx.clearRect(0, 0, w, h);
  ctx.font = "10px sans-serif";
  // Spans where the score could not be computed: calibration (amber) and poor signal (pink).
  const scores = d.scores.filter((s) => now - s[0] <= WINDOW_S + 1);
  for (let i = 0; i < scores.length; i++) {
    const [t, , , state] = scores[i];
    const fill = state === "calibrating" ? COLORS.calibration : state === "poor-signal" ? COLORS.poor : null;
    if (!fill) continue;
    const t1 = i + 1 < scores.length ? scores[i + 1][0] : Math.min(now, t + 1);
    ctx.fillStyle = fill;
    ctx.fillRect(Math.max(left, x(t)), top, Math.max(1, x(t1) - Math.max(left, x(t))), ph);
  }
  // Axes: score 0..1 on the left, seconds before now along the bottom.
  ctx.strokeStyle = COLORS.grid;
  ctx.fillStyle = COLORS.text;
  ctx.lineWidth = 1;
  ctx.textAlign = "right";
  for (const level of [0, 0.5, 1]) {
    ctx.beginPath(); ctx.moveTo(left, y(level)); ctx.lineTo(w - right, y(level)); ctx.stroke();
    ctx.fillText(level.toFixed(1), left - 4, y(level) + 3);
  }
  ctx.textAlign = "center";
  for (let s = WINDOW_S; s >= 0; s -= 15) {
    const xs = left + pw - s / WINDOW_S * pw;
    ctx.beginPath(); ctx.moveTo(xs, top + ph); ctx.lineTo(xs, top + ph + 4); ctx.stroke();
    ctx.fillText(s === 0 ? "now" : `−${s}`, Math.min(w - right - 8, xs), top + ph + 14);
  }
  ctx.fillText("time (seconds before now)", left + pw / 2, h - 3);
  ctx.save(); ctx.translate(9, top + ph / 2); ctx.rotate(-Math.PI / 2); ctx.fillText("score", 0, 0); ctx.restore();
  // The relaxed threshold, dashed, labelled.
  const threshold = settings.relaxed_threshold;
  ctx.strokeStyle = COLORS.threshold;
  ctx.setLineDash([5, 4]);
  const ty = Math.round(y(threshold)) + 0.5;  // on a pixel row: a crisp 1 px dash, not two faint ones
  ctx.beginPath(); ctx.moveTo(left, ty); ctx.lineTo(w - right, ty); ctx.stroke();
  ctx.setLineDash([]);
  ctx.fillStyle = COLORS.threshold;
  ctx.textAlign = "left";
  ctx.fillText(`relaxed ≥ ${threshold.toFixed(2)}`, left + 4, y(threshold) - 4);
  if (scores.some((s) => s[3] === "calibrating")) {
    ctx.fillStyle = "#9a6a0e";
    const first = scores.find((s) => s[3] === "calibrating");
    const room = w - right - 4 - ctx.measureText("calibration").width;  // kept inside the chart near "now"
    ctx.fillText("calibration", Math.min(room, Math.max(left + 4, x(first[0]) + 4)), top + 12);
  }
  // The score: green where confidence is good, grey where it is low; gaps where there is none.
  ctx.lineWidth = 2;
  for (let i = 1; i < scores.length; i++) {
    const [t0, v0] = scores[i - 1], [t1, v1, c1] = scores[i];
    if (typeof v0 !== "number" || typeof v1 !== "number" || t1 - t0 > 2) continue;
    ctx.strokeStyle = typeof c1 === "number" && c1 >= LOW_CONFIDENCE ? COLORS.line : COLORS.low;
    ctx.beginPath(); ctx.moveTo(Math.max(left, x(t0)), y(v0)); ctx.lineTo(x(t1), y(v1)); ctx.stroke();
  }
}

function loadSnapshot(snap) {
  settings = snap.settings || settings;
  devices.clear();
  document.getElementById("devices").replaceChildren();
  setBroker(snap.broker_connected);
  for (const dev of snap.devices) {
    const d = card(dev.device);
    d.session = dev.session;
    d.previous = dev.previous_sessions.slice().reverse();
    d.events = dev.session.events.slice();
    d.lastSeen = dev.last_seen;
    for (const [topic, p] of Object.entries(dev.latest)) if (topic !== "events") apply(d, topic, p);
    d.scores = dev.scores.slice();
    showScore(d);
    drawEvents(d);
  }
}

function connect() {
  const source = new EventSource("/events");
  source.addEventListener("snapshot", (e) => loadSnapshot(JSON.parse(e.data)));
  source.addEventListener("update", (e) => {
    const u = JSON.parse(e.data);
    const d = card(u.device);
    startSession(d, u.session);
    d.lastSeen = u.last_seen;
    apply(d, u.topic, u.payload);
  });
  source.addEventListener("broker", (e) => setBroker(JSON.parse(e.data).connected));
  source.onerror = async () => {
    setBroker(false);
    // A dashboard started again has a new token: say so rather than retry for ever.
    const probe = await fetch("/api/devices").catch(() => null);
    if (probe && probe.status === 401) {
      source.close();
      const badge = document.getElementById("broker");
      badge.textContent = "access expired: open the address neuromusic dashboard printed";
    }
  };
}

function setBroker(connected) {
  brokerConnected = connected;
  const badge = document.getElementById("broker");
  badge.textContent = connected ? "broker: connected" : "broker: disconnected";
  badge.className = "badge " + (connected ? "connected" : "offline");
  for (const d of devices.values()) updateButtons(d);
}

let lastText = 0;
function frame(ms) {
  for (const d of devices.values()) drawChart(d);
  if (ms - lastText > 500) {  // the status lines count seconds: twice a second is enough
    lastText = ms;
    for (const d of devices.values()) {
      d.el.querySelector(".status-line").textContent = statusLine(d);
      showPlayingBar(d);
    }
  }
  requestAnimationFrame(frame);
}

connect();
requestAnimationFrame(frame);
