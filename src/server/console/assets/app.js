// kastle web console: a single page over the console's JSON endpoints.
// Every value from the broker is put in the page as text (textContent),
// never as markup.
"use strict";

const REFRESH_MS = 5000;
const main = document.getElementById("main");
let timer = null;

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined) continue;
    if (k === "class") e.className = v; else e.setAttribute(k, v);
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function bytes(n) {
  if (n === null || n === undefined) return "–";
  const u = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0, v = n;
  while (v >= 1024 && i < u.length - 1) { v /= 1024; i++; }
  return (i === 0 ? v : v.toFixed(1)) + " " + u[i];
}

function duration(ms) {
  const s = Math.floor(ms / 1000), d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24,
    m = Math.floor(s / 60) % 60;
  return (d ? d + "d " : "") + (d || h ? h + "h " : "") + m + "m " + (s % 60) + "s";
}

function time(ms) { return ms >= 0 ? new Date(ms).toISOString().replace("T", " ").replace("Z", "") : String(ms); }

async function api(path) {
  const r = await fetch(path, { headers: { Accept: "application/json" } });
  let body;
  try { body = await r.json(); } catch (e) { body = { error: r.status + " " + r.statusText }; }
  if (!r.ok) throw new Error(body.error || r.statusText);
  return body;
}

function card(label, value, field) {
  return el("div", { class: "card" }, el("div", { class: "label" }, label),
    el("div", { class: "value", "data-field": field }, value));
}

// A table: columns are [header, key, class]; cells get data-field=key.
function table(columns, rows, rowId) {
  const head = el("tr", {}, ...columns.map(([h, , cls]) => el("th", { class: cls }, h)));
  const body = rows.map(r => el("tr", { "data-row": rowId ? rowId(r) : null },
    ...columns.map(([, key, cls, render]) => {
      const v = render ? render(r) : r[key];
      return el("td", { class: cls, "data-field": key }, v === null || v === undefined ? "–" : v);
    })));
  return el("table", {}, el("thead", {}, head), el("tbody", {}, ...body));
}

function link(href, text) { return el("a", { href }, text); }

// A line chart of [x, y] points (x: ms) as SVG.
function chart(points, label, format, id) {
  const W = 640, H = 160, L = 70, B = 22, T = 10, R = 10;
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("class", "chart");
  svg.setAttribute("width", W); svg.setAttribute("height", H);
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  if (id) svg.setAttribute("id", id);
  svg.setAttribute("data-points", String(points.length));
  const text = (x, y, s, anchor) => {
    const t = document.createElementNS(ns, "text");
    t.setAttribute("x", x); t.setAttribute("y", y);
    if (anchor) t.setAttribute("text-anchor", anchor);
    t.textContent = s; svg.append(t);
  };
  const axis = document.createElementNS(ns, "path");
  axis.setAttribute("class", "axis");
  axis.setAttribute("d", `M${L},${T} V${H - B} H${W - R}`);
  svg.append(axis);
  text(W / 2, H - 4, label, "middle");
  if (points.length === 0) {
    text(W / 2, H / 2, "no samples yet", "middle");
    return svg;
  }
  const xs = points.map(p => p[0]), ys = points.map(p => p[1]);
  const x0 = Math.min(...xs), x1 = Math.max(...xs), ymax = Math.max(1, ...ys);
  const px = x => L + (x1 === x0 ? (W - L - R) : (x - x0) / (x1 - x0) * (W - L - R));
  const py = y => H - B - y / ymax * (H - B - T);
  const line = document.createElementNS(ns, "polyline");
  line.setAttribute("class", "line");
  line.setAttribute("points", points.map(p => px(p[0]).toFixed(1) + "," + py(p[1]).toFixed(1)).join(" "));
  svg.append(line);
  text(L - 4, T + 8, format(ymax), "end");
  text(L - 4, H - B, "0", "end");
  text(L, H - 4, new Date(x0).toLocaleTimeString());
  text(W - R, H - 4, new Date(x1).toLocaleTimeString(), "end");
  return svg;
}

function render(...nodes) {
  main.replaceChildren(...nodes);
  document.getElementById("status").textContent = "Updated " + new Date().toLocaleTimeString();
}

// ---------------------------------------------------------------- pages

async function overview() {
  const o = await api("/api/overview");
  document.getElementById("who").textContent = o.principal || "";
  const nodes = [
    el("h1", {}, "Cluster"),
    el("div", { class: "cards" },
      card("Cluster id", o.cluster_id, "cluster_id"),
      card("Version", "kastle " + o.version, "version"),
      card("Mode", o.kraft_mode, "mode"),
      card("Uptime", duration(o.uptime_ms), "uptime"),
      card("Brokers", o.brokers.length, "broker_count"),
      card("Topics", o.topic_count, "topic_count"),
      card("Partitions", o.partition_count, "partition_count"),
      card("Messages", o.messages, "messages"),
      card("Log size", bytes(o.size_bytes), "size"),
      card("Bytes in", bytes(o.bytes_in), "bytes_in"),
      card("Groups", o.group_count, "group_count"),
      card("Connections", o.connections_open, "connections")),
    el("h2", {}, "Brokers"),
    table([["Id", "id"], ["Endpoints", "endpoints", null, b => b.endpoints.join(", ")],
      ["Rack", "rack"], ["Fenced", "fenced", null, b => String(b.fenced)]], o.brokers, b => String(b.id)),
  ];
  if (o.broker_configs) {
    nodes.push(el("details", { id: "broker-configs" }, el("summary", {}, `Broker configs (${o.broker_configs.length})`),
      configTable(o.broker_configs)));
  }
  render(...nodes);
}

function configTable(configs) {
  return table([["Name", "name"], ["Value", "value"], ["Source", "source"],
    ["Read-only", "read_only", null, c => String(c.read_only)]], configs, c => c.name);
}

async function topics() {
  const t = await api("/api/topics");
  const sum = (tp, k) => tp.partitions.reduce((a, p) => a + p[k], 0);
  render(el("h1", {}, "Topics"),
    table([
      ["Topic", "name", null, x => link("#/topics/" + encodeURIComponent(x.name), x.name)],
      ["Partitions", "partition_count", "num"],
      ["Start offsets (Σ)", "start", "num", x => sum(x, "log_start_offset")],
      ["End offsets (Σ)", "end", "num", x => sum(x, "high_watermark")],
      ["Messages", "messages", "num"],
      ["Size", "size_bytes", "num", x => bytes(x.size_bytes)],
      ["Produced", "bytes_in", "num", x => bytes(x.bytes_in)],
      ["Throughput", "throughput", null, x => {
        const pts = x.throughput.map(r => [r.ts, r.bytes_per_sec]);
        return pts.length ? bytes(Math.round(pts[pts.length - 1][1])) + "/s" : "–";
      }],
    ], t.topics, x => x.name),
    el("h2", {}, "Produced bytes/s over time"),
    ...t.topics.filter(x => !x.internal).slice(0, 8).map(x =>
      el("div", {}, el("div", { class: "muted" }, x.name),
        chart(x.throughput.map(r => [r.ts, r.bytes_per_sec]), x.name + " bytes/s", v => bytes(Math.round(v)) + "/s"))));
}

async function topic(name) {
  const t = await api("/api/topics/" + encodeURIComponent(name));
  const nodes = [
    el("h1", {}, "Topic ", el("span", { "data-field": "topic" }, t.name)),
    el("div", { class: "cards" },
      card("Partitions", t.partition_count, "partition_count"),
      card("Messages", t.messages, "messages"),
      card("Size", bytes(t.size_bytes), "size"),
      card("Topic id", t.id, "id")),
    el("p", {}, link("#/messages?topic=" + encodeURIComponent(t.name), "Browse messages →")),
    el("h2", {}, "Partitions"),
    table([
      ["Partition", "partition", "num"], ["Leader", "leader", "num"],
      ["Replicas", "replicas", null, p => p.replicas.join(",")], ["ISR", "isr", null, p => p.isr.join(",")],
      ["Start offset", "log_start_offset", "num"], ["End offset", "high_watermark", "num"],
      ["Last stable", "last_stable_offset", "num"], ["Messages", "messages", "num"],
      ["Size", "size_bytes", "num", p => bytes(p.size_bytes)],
    ], t.partitions, p => String(p.partition)),
    el("h2", {}, "Throughput"),
    chart(t.throughput.map(r => [r.ts, r.messages_per_sec]), "records/s", v => v.toFixed(1), "throughput-chart"),
  ];
  if (t.configs) nodes.push(el("h2", {}, "Configs"), configTable(t.configs));
  render(...nodes);
}

async function groups() {
  const g = await api("/api/groups");
  render(el("h1", {}, "Consumer groups"),
    table([
      ["Group", "group_id", null, x => link("#/groups/" + encodeURIComponent(x.group_id), x.group_id)],
      ["State", "state"], ["Type", "type"], ["Protocol type", "protocol_type"],
      ["Partitions", "partitions", "num"], ["Lag", "lag", "num"],
    ], g.groups, x => x.group_id));
}

async function group(id) {
  const g = await api("/api/groups/" + encodeURIComponent(id));
  const members = g.members.map(m => Object.assign({}, m, {
    assigned: m.assignment.map(a => a.topic + "-" + a.partition).join(", "),
  }));
  render(
    el("h1", {}, "Group ", el("span", { "data-field": "group_id" }, g.group_id)),
    el("div", { class: "cards" },
      card("State", g.state, "state"), card("Type", g.type, "type"),
      card("Protocol", g.protocol || "–", "protocol"), card("Members", g.members.length, "member_count"),
      card("Total lag", g.lag, "lag")),
    el("h2", {}, "Members"),
    table([["Member", "member_id"], ["Client id", "client_id"], ["Host", "client_host"],
      ["Instance", "instance_id"], ["Assignment", "assigned"]], members, m => m.member_id),
    el("h2", {}, "Offsets and lag"),
    table([["Topic", "topic"], ["Partition", "partition", "num"], ["Committed", "committed_offset", "num"],
      ["End offset", "high_watermark", "num"], ["Lag", "lag", "num"]], g.offsets, o => o.topic + "-" + o.partition),
    el("h2", {}, "Lag over time"),
    chart(g.lag_history.map(h => [h.ts, h.lag]), "total lag", v => String(Math.round(v)), "lag-chart"));
}

function fieldCell(f) {
  if (f === null) return el("span", { class: "muted" }, "null");
  return el("pre", { title: f.size + " bytes" + (f.truncated ? ", cut" : "") }, f.text + (f.truncated ? " …" : ""));
}

async function messages(params) {
  const q = new URLSearchParams(params);
  const input = (name, label, value, type) => el("label", {}, label,
    el("input", { name, id: "m-" + name, value: value || "", type: type || "text", size: name === "topic" ? 24 : 12 }));
  const format = el("select", { name: "format", id: "m-format" },
    ...["text", "json", "hex"].map(f => el("option", { value: f }, f)));
  format.value = q.get("format") || "text";
  const form = el("form", { class: "browse", id: "browse" },
    input("topic", "Topic", q.get("topic")), input("partition", "Partition", q.get("partition") || "0", "number"),
    input("offset", "Offset", q.get("offset"), "number"), input("timestamp", "or timestamp (ms)", q.get("timestamp"), "number"),
    input("limit", "Records", q.get("limit") || "20", "number"), el("label", {}, "Format", format),
    el("button", { type: "submit", id: "m-go" }, "Show"));
  form.addEventListener("submit", ev => {
    ev.preventDefault();
    const p = new URLSearchParams();
    for (const [k, v] of new FormData(form)) if (String(v).trim() !== "") p.set(k, String(v).trim());
    location.hash = "#/messages?" + p.toString();
  });
  const nodes = [el("h1", {}, "Messages"), form];
  if (q.get("topic")) {
    const m = await api("/api/messages?" + q.toString());
    nodes.push(el("p", { class: "muted", id: "m-range" },
      `Partition log ${m.log_start_offset}–${m.high_watermark}; showing ${m.records.length} record(s) from ${m.first_offset}; next offset ${m.next_offset}`));
    nodes.push(table([
      ["Offset", "offset", "num"], ["Timestamp", "timestamp", null, r => time(r.timestamp)],
      ["Key", "key", null, r => fieldCell(r.key)],
      ["Headers", "headers", null, r => r.headers.length ? el("div", {}, ...r.headers.map(h =>
        el("div", {}, el("b", {}, h.key + ": "), fieldCell(h.value)))) : "–"],
      ["Value", "value", null, r => fieldCell(r.value)],
    ], m.records, r => String(r.offset)));
  }
  render(...nodes);
}

// ---------------------------------------------------------------- routing

async function show() {
  clearTimeout(timer);
  const hash = location.hash.replace(/^#/, "") || "/";
  const [path, query] = hash.split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  const page = parts[0] || "overview";
  for (const a of document.querySelectorAll("header nav a")) a.classList.toggle("active", a.dataset.nav === page);
  try {
    if (page === "overview") await overview();
    else if (page === "topics" && parts[1] !== undefined) await topic(parts[1]);
    else if (page === "topics") await topics();
    else if (page === "groups" && parts[1] !== undefined) await group(parts[1]);
    else if (page === "groups") await groups();
    else if (page === "messages") { await messages(query || ""); return; }
    else render(el("p", { class: "error" }, "No such page"));
  } catch (e) {
    render(el("p", { class: "error", id: "error" }, e.message));
  }
  timer = setTimeout(show, REFRESH_MS);
}

window.addEventListener("hashchange", show);
show();
