// neuromusic dashboard: one card per device, fed by Server-Sent Events from the dashboard server.
"use strict";

const WINDOW_S = 60;   // seconds of score history in the chart
const MAX_POINTS = 600;
const devices = new Map();  // device id -> {el, scores: [[unix, value]], latest: {}}
const answered = new Set();  // command ids whose result already arrived (it can beat the POST's own reply)

function card(id) {
  let d = devices.get(id);
  if (d) return d;
  const el = document.getElementById("device-template").content.firstElementChild.cloneNode(true);
  el.id = "device-" + id;
  el.dataset.device = id;
  el.querySelector(".name").textContent = id;
  for (const button of el.querySelectorAll("button[data-cmd]")) {
    button.addEventListener("click", () => command(id, button.dataset.cmd, el));
  }
  document.getElementById("devices").appendChild(el);
  d = {el, scores: [], latest: {}};
  devices.set(id, d);
  document.getElementById("count").textContent = devices.size + (devices.size === 1 ? " device" : " devices");
  return d;
}

async function command(id, cmd, el) {
  const body = {device: id, cmd};
  if (cmd === "marker") body.label = el.querySelector(".label").value.trim() || "marker from dashboard";
  const out = el.querySelector(".result");
  try {
    const response = await fetch("/api/cmd", {method: "POST", headers: {"Content-Type": "application/json"},
                                             body: JSON.stringify(body)});
    const reply = await response.json();
    if (!response.ok) out.textContent = `error: ${reply.error}`;
    else if (!answered.has(reply.id)) out.textContent = `sent ${cmd} (${reply.id})…`;
  } catch (error) {
    out.textContent = "error: " + error;
  }
}

function fmt(value, digits) {
  return typeof value === "number" ? value.toFixed(digits) : "–";
}

function apply(d, topic, p) {
  d.latest[topic] = p;
  const el = d.el;
  if (topic === "status") {
    const badge = el.querySelector(".state");
    badge.textContent = p.state;
    badge.className = "badge state " + p.state;
  } else if (topic === "score") {
    d.scores.push([p.unix, p.value]);
    if (d.scores.length > MAX_POINTS) d.scores.splice(0, d.scores.length - MAX_POINTS);
    el.querySelector(".score-value").textContent = fmt(p.value, 2);
    el.querySelector(".score-value").title = `${p.state}, confidence ${fmt(p.confidence, 2)}`;
  } else if (topic === "controls") {
    el.querySelector(".tempo").textContent = fmt(p.tempo, 1) + " BPM";
    el.querySelector(".valence").textContent = fmt(p.valence, 2);
    el.querySelector(".energy").textContent = fmt(p.energy, 2);
  } else if (topic === "bands") {
    drawBands(el.querySelector(".bands"), p);
  } else if (topic === "quality") {
    const bad = p.channels.filter((_, i) => !p.good[i]);
    el.querySelector(".quality").textContent =
      `signal quality ${fmt(p.quality * 100, 0)} %` + (bad.length ? ` (bad: ${bad.join(", ")})` : "");
  } else if (topic === "events") {
    const li = document.createElement("li");
    li.textContent = `${new Date(p.unix * 1000).toLocaleTimeString()} [${p.kind}] ${p.text}`;
    const list = el.querySelector(".events");
    list.prepend(li);
    while (list.children.length > 20) list.lastChild.remove();
  } else if (topic === "cmd/result") {
    answered.add(p.id);
    el.querySelector(".result").textContent =
      `${p.cmd ?? "command"} ${p.id ?? ""}: ` + (p.ok ? "ok" : "error: " + p.error);
  }
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
    bar.style.width = (typeof p.mean[i] === "number" ? 70 * Math.abs(p.mean[i]) / max : 0) + "%";
    const value = document.createElement("span");
    value.textContent = fmt(p.mean[i], 2);
    row.append(label, bar, value);
    return row;
  }));
}

function drawChart(d) {
  const canvas = d.el.querySelector(".chart");
  const ctx = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height, pad = 4;
  ctx.clearRect(0, 0, w, h);
  ctx.strokeStyle = "#e2e4e8";
  ctx.fillStyle = "#889";
  ctx.font = "10px sans-serif";
  for (const level of [0, 0.5, 1]) {
    const y = pad + (1 - level) * (h - 2 * pad);
    ctx.beginPath(); ctx.moveTo(0, y); ctx.lineTo(w, y); ctx.stroke();
    ctx.fillText(level.toFixed(1), 2, Math.min(h - 2, y + 10));
  }
  if (!d.scores.length) return;
  const now = Math.max(Date.now() / 1000, d.scores[d.scores.length - 1][0]);
  ctx.strokeStyle = "#2e9d57";
  ctx.lineWidth = 2;
  ctx.beginPath();
  let drawing = false;
  for (const [t, v] of d.scores) {
    if (now - t > WINDOW_S || typeof v !== "number") { drawing = false; continue; }
    const x = w - (now - t) / WINDOW_S * w;
    const y = pad + (1 - v) * (h - 2 * pad);
    if (drawing) ctx.lineTo(x, y); else ctx.moveTo(x, y);
    drawing = true;
  }
  ctx.stroke();
}

function connect() {
  const source = new EventSource("/events");
  source.addEventListener("snapshot", (e) => {
    const snap = JSON.parse(e.data);
    setBroker(snap.broker_connected);
    for (const dev of snap.devices) {
      const d = card(dev.device);
      d.scores = dev.scores.slice();
      for (const [topic, p] of Object.entries(dev.latest)) if (topic !== "score" && topic !== "events") apply(d, topic, p);
      for (const ev of dev.events) apply(d, "events", ev);
      if (dev.latest.score) showScore(d, dev.latest.score);
    }
  });
  source.addEventListener("update", (e) => {
    const u = JSON.parse(e.data);
    apply(card(u.device), u.topic, u.payload);
  });
  source.addEventListener("broker", (e) => setBroker(JSON.parse(e.data).connected));
  source.onerror = () => setBroker(false);
}

function showScore(d, score) {
  d.el.querySelector(".score-value").textContent = fmt(score.value, 2);
}

function setBroker(connected) {
  const badge = document.getElementById("broker");
  badge.textContent = connected ? "broker: connected" : "broker: disconnected";
  badge.className = "badge " + (connected ? "connected" : "offline");
}

function frame() {
  for (const d of devices.values()) drawChart(d);
  requestAnimationFrame(frame);
}

connect();
requestAnimationFrame(frame);
