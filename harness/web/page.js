"use strict";
// halab's live view: one EventSource, three kinds of message (status, event, probe), drawn with
// SVG and a canvas. No library: the page must work on a lab machine with no network.

const STRIP_S = 15;
const BUCKET_S = STRIP_S / 1000;  // the canvas is 1000 pixels wide
const STRIP_FPS = 10;             // smooth enough on a projector, and half the cost of 20
const PALETTE = ["#1e88e5", "#43a047", "#8e24aa", "#fb8c00", "#00acc1", "#6d4c41", "#c0ca33", "#5e35b1"];
const MAX_EVENTS = 200;
const SVG_NS = "http://www.w3.org/2000/svg";
const $ = (id) => document.getElementById(id);

// What the page knows; window.halab lets a test (or a curious student) look at it.
const state = {
  status: null, claims: new Set(), colours: new Map(), buckets: new Map(), frameNow: 0, frameAt: 0,
  answering: null, latencies: [], messages: 0, controls: null, picture: null, servers: null, serversAt: 0,
};
window.halab = state;

function colour(server) {
  if (!state.colours.has(server)) state.colours.set(server, PALETTE[state.colours.size % PALETTE.length]);
  return state.colours.get(server);
}

// The token the fault buttons send: taken from the address (#token=...) and then removed from it,
// so that it is not left on the projected screen or in the history.
const TOKEN = new URLSearchParams(location.hash.slice(1)).get("token") || "";
if (location.hash) history.replaceState(null, "", location.pathname);

function el(tag, attrs = {}, text = null, ns = null) {
  const e = ns ? document.createElementNS(ns, tag) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== null) e.textContent = text;
  return e;
}

// --- status: the picture, the agents, the controls -------------------------------------

function onStatus(s) {
  state.status = s;
  state.claims = new Set(s.vip.claimed_by);
  $("topology").textContent = `${s.topology} lab`;
  $("vip-address").textContent = s.vip.address;
  $("probe-about").textContent = `${s.probe.proto} from ${s.probe.from}, ${s.probe.rate}/s`;
  drawPicture(s);
  drawAgents(s.agents);
  drawVip();
  if (ALLOW_FAULTS) drawControls(s);
}

function drawPicture(s) {
  const key = JSON.stringify([s.layout, s.links, s.faults.crashed]);
  if (key === state.picture) return;
  state.picture = key;
  const svg = $("picture");
  const ys = Object.values(s.layout).map((p) => p[1]);
  svg.setAttribute("viewBox", `0 0 1000 ${Math.max(...ys) + 60}`);
  svg.replaceChildren();
  for (const link of s.links) {
    const [a, b] = [s.layout[link.a], s.layout[link.b]];
    svg.append(el("line", {x1: a[0], y1: a[1], x2: b[0], y2: b[1], "data-link": `${link.a}-${link.b}`,
                           "data-state": link.state}, null, SVG_NS));
  }
  const crashed = new Set(s.faults.crashed);
  for (const [name, [x, y]] of Object.entries(s.layout)) {
    const isHost = name in s.hosts;
    const g = el("g", {class: isHost ? "host" : "switch", "data-node": name, "data-crashed": crashed.has(name)},
                 null, SVG_NS);
    if (isHost) {
      g.append(el("circle", {cx: x, cy: y, r: 24, fill: "#fff"}, null, SVG_NS),
               el("circle", {cx: x, cy: y, r: 24, fill: colour(name) + "55"}, null, SVG_NS));
    } else {
      g.append(el("rect", {x: x - 34, y: y - 16, width: 68, height: 32, rx: 4}, null, SVG_NS));
    }
    g.append(el("text", {x, y: isHost ? y + 38 : y}, name, SVG_NS));
    svg.append(g);
  }
}

function drawVip() {
  const svg = $("picture");
  svg.querySelectorAll(".vip").forEach((v) => v.remove());
  if (!state.status) return;
  // The probe's VIP (moved at once by the agents' events), and every other address an agent holds.
  const badges = [...state.claims].map((h) => [h, "VIP"]);
  for (const [address, hosts] of Object.entries(state.status.vips)) {
    if (address !== state.status.vip.address) badges.push(...hosts.map((h) => [h, address]));
  }
  const holders = [...state.claims].sort();
  $("vip-holder").textContent = holders.length ? holders.join(" and ") :
    (state.status && state.status.vip.balancer ? `the ${state.status.vip.balancer} balancer` : "nobody");
  $("vip-holder").dataset.count = holders.length;
  const stacked = {};
  for (const [h, label] of badges) {
    const p = state.status.layout[h];
    if (!p) continue;
    const dy = 24 * (stacked[h] = (stacked[h] || 0) + 1) - 24;
    const width = 12 + 8 * label.length;
    const g = el("g", {class: "vip", "data-holder": h, "data-address": label}, null, SVG_NS);
    g.append(el("rect", {x: p[0] + 22, y: p[1] - 34 - dy, width, height: 22, rx: 4}, null, SVG_NS));
    g.append(el("text", {x: p[0] + 22 + width / 2, y: p[1] - 23 - dy}, label, SVG_NS));
    svg.append(g);
  }
}

function drawAgents(agents) {
  const body = $("agents").tBodies[0];
  body.replaceChildren();
  for (const a of agents) {
    const row = el("tr", {"data-running": a.running, "data-agent": `${a.host}/${a.program}`});
    row.append(el("td", {}, a.host), el("td", {}, a.program),
               el("td", {}, a.running ? (a.state || "running") : "not running"));
    body.append(row);
  }
}

function drawControls(s) {
  // Rebuilt only when the choice changes: a button replaced under the pointer would lose its click.
  const wanted = [];
  for (const link of s.links) {
    if (link.state === "cut") wanted.push([`restore ${link.a}-${link.b}`, ["fault", "restore", link.a, link.b]]);
    else if (link.state === "up") wanted.push([`cut ${link.a}-${link.b}`, ["fault", "link-cut", link.a, link.b]]);
  }
  for (const host of Object.keys(s.hosts).sort()) {
    if (!s.faults.crashed.includes(host) && s.agents.some((a) => a.host === host)) {
      wanted.push([`crash ${host}`, ["fault", "crash", host]]);
    }
  }
  for (const a of s.agents) {
    if (a.host === "root" || !a.running || a.program === "responder") continue;
    wanted.push([`kill ${a.program}@${a.host}`, ["fault", "kill", a.host, a.program]]);
  }
  wanted.push(["restore everything", ["fault", "restore"]]);
  const key = JSON.stringify(wanted);
  if (key === state.controls) return;
  state.controls = key;
  $("controls-box").hidden = false;
  const box = $("controls");
  box.replaceChildren();
  for (const [label, argv] of wanted) {
    const b = el("button", {"data-argv": argv.join(" ")}, label);
    b.addEventListener("click", () => sendFault(argv));
    box.append(b);
  }
}

async function sendFault(argv) {
  const answer = $("control-answer");
  answer.textContent = `${argv.join(" ")} …`;
  try {
    const r = await fetch("/fault", {method: "POST", headers: {"Content-Type": "application/json",
                                     "X-Halab-Token": TOKEN}, body: JSON.stringify({argv})});
    const body = await r.json();
    answer.textContent = `${argv.join(" ")}: ${body.out}`;
    answer.dataset.rc = body.rc;
  } catch (e) {
    answer.textContent = `${argv.join(" ")}: no answer (${e})`;
  }
}

// --- events: the feed, and the VIP's holder as soon as an agent says so ----------------

const CLAIMS = new Map([["halab-vrrp", "MASTER"], ["keepalived", "MASTER"], ["halab-heartbeat", "ACTIVE"]]);

function onEvent(e) {
  const li = el("li", {"data-source": e.source, "data-to": e.to});
  const time = new Date(e.wall * 1000).toTimeString().slice(0, 8);
  const change = e.from ? `${e.from} → ${e.to}` : e.to;
  li.append(el("span", {class: e.source === "halab" ? "by-halab" : ""}, `${time} ${e.host} ${e.source} ${e.subject}: ${change}`));
  li.append(el("span", {class: "reason"}, ` (${e.reason})`));
  const list = $("events");
  list.prepend(li);
  while (list.children.length > MAX_EVENTS) list.lastChild.remove();
  const claim = CLAIMS.get(e.source);
  const aboutNode = e.source !== "halab-heartbeat" || e.subject === e.host;
  const candidate = state.status && state.status.vip.candidates.includes(e.host);
  if (claim && aboutNode && candidate && !e.replay) {
    if (e.to === claim) state.claims.add(e.host); else state.claims.delete(e.host);
    drawVip();
  }
  // How long after it happened the page showed it (the page and the lab share a clock).
  if (!e.replay) state.latencies.push({host: e.host, source: e.source, to: e.to, ms: Date.now() - e.wall * 1000});
}

// --- the probe: the strip, the outage, the spread ---------------------------------------

function onProbe(p) {
  if (p.replay) state.buckets.clear();
  for (const [t, server] of p.marks) {
    // One bucket per pixel column of the strip: a 1000 requests/s probe costs the page a few
    // hundred rectangles a frame, not fifteen thousand.
    const key = Math.floor(t / BUCKET_S);
    const b = state.buckets.get(key) || {lost: 0, answered: {}, fill: null, most: 0};
    if (server === null) {
      b.lost += 1;
      b.fill = "#d32f2f";  // a loss shows, however many answers share its column
    } else {
      const n = (b.answered[server] || 0) + 1;
      b.answered[server] = n;
      if (!b.lost && n > b.most) { b.most = n; b.fill = colour(server); }
    }
    state.buckets.set(key, b);
  }
  state.frameNow = p.now;
  state.frameAt = performance.now();
  for (const key of state.buckets.keys()) {
    if (key * BUCKET_S < p.now - STRIP_S - 1) state.buckets.delete(key);
  }
  const latest = p.marks.filter((m) => m[1] !== null).sort((a, b) => a[0] - b[0]).pop();
  if (latest) state.answering = latest[1];
  if (p.outage_s !== null) state.answering = null;
  setText("answering", state.answering || "nobody");
  setText("outage", p.outage_s === null ? "none" : `${p.outage_s.toFixed(1)} s`);
  const running = String(p.outage_s !== null);
  if ($("outage").dataset.running !== running) $("outage").dataset.running = running;
  setText("last-outage", p.last_outage_s === null ? "none" : `${(p.last_outage_s * 1000).toFixed(0)} ms`);
  setText("lost", String(p.lost));
  drawServers(p);
}

// The page is redrawn only where something changed: at 20 frames a second that is most of its cost.
function setText(id, text) {
  const e = $(id);
  if (e.textContent !== text) e.textContent = text;
}

function drawServers(p) {
  const rows = Object.keys(p.answered).sort().map((server) => [server, Math.round((p.shares[server] || 0) * 100),
                                                               Math.round(p.rates[server] || 0)]);
  const key = JSON.stringify(rows);
  // Twice a second at most: the numbers are per second, and a bar that jitters is hard to read.
  if (key === state.servers || performance.now() - state.serversAt < 500) return;
  state.servers = key;
  state.serversAt = performance.now();
  const box = $("servers");
  box.replaceChildren();
  for (const [server, percent, rate] of rows) {
    const row = el("div", {class: "bar", "data-server": server});
    row.append(el("span", {}, server),
               el("div", {style: `width:${percent * 3}px;background:${colour(server)}`}),
               el("small", {}, `${rate}/s, ${percent} %`));
    box.append(row);
  }
}

function drawStrip() {
  const canvas = $("strip");
  const ctx = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height;
  ctx.clearRect(0, 0, w, h);
  const now = state.frameNow + (performance.now() - state.frameAt) / 1000;
  const width = Math.max(2, w * BUCKET_S / STRIP_S);
  for (const [key, b] of state.buckets) {
    const x = w - (now - key * BUCKET_S) / STRIP_S * w;
    if (x < -width) continue;
    ctx.fillStyle = b.fill;
    if (b.lost) ctx.fillRect(x, 0, width, h); else ctx.fillRect(x, 10, width, h - 20);
  }
}

// A (re)connection: what follows replays the lab's recent past, so the page starts over.
function onHello() {
  $("events").replaceChildren();
  state.buckets.clear();
}

// --- the stream -------------------------------------------------------------------------

function connect() {
  const source = new EventSource("/stream");
  const connection = $("connection");
  source.onopen = () => { connection.textContent = "live"; connection.dataset.state = "live"; };
  source.onerror = () => { connection.textContent = "reconnecting…"; connection.dataset.state = "lost"; };
  source.onmessage = (m) => {
    const msg = JSON.parse(m.data);
    state.messages += 1;
    if (msg.type === "hello") onHello();
    else if (msg.type === "status") onStatus(msg);
    else if (msg.type === "event") onEvent(msg);
    else if (msg.type === "probe") onProbe(msg);
    else if (msg.type === "gone") {
      connection.textContent = msg.why; connection.dataset.state = "gone"; source.close();
    }
  };
}

connect();
setInterval(drawStrip, 1000 / STRIP_FPS);
