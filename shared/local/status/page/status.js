// The status page: polls /status.json every second and draws its figures as SVG. Every number
// shown carries data-figure, the path of its value in the JSON, so a test can read the page.
"use strict";

const OUTCOMES = ["delivered", "retrying", "failed", "expired"];
const STATES = ["accepted", "delivering", "retrying", "delivered", "failed", "expired"];
const COLORS = {
  delivered: "#2e8540", retrying: "#d98c00", failed: "#c62828", expired: "#757575",
  accepted: "#1565c0", delivering: "#6a1b9a", p50: "#1565c0", p90: "#d98c00", p99: "#c62828",
};
const SVG = "http://www.w3.org/2000/svg";

function el(tag, attrs, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function svg(tag, attrs, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

// figure is a number the page shows, tagged with its JSON path.
function figure(path, value) {
  return el("span", { "data-figure": path }, String(value));
}

function replace(id, ...children) {
  document.getElementById(id).replaceChildren(...children);
}

function legend(keys) {
  const d = el("div", { class: "legend" });
  for (const k of keys) {
    const s = el("span");
    s.append(el("i", { style: "background:" + COLORS[k] }), k);
    d.append(s);
  }
  return d;
}

// hbars draws one horizontal bar per entry: [label, value, color, path].
function hbars(entries) {
  const row = 22, labelW = 110, numW = 60, width = 420;
  const max = Math.max(1, ...entries.map((e) => e[1]));
  const s = svg("svg", { width: "100%", viewBox: `0 0 ${width} ${entries.length * row}`, role: "img" });
  entries.forEach(([label, value, color], i) => {
    const y = i * row;
    s.append(svg("text", { x: 0, y: y + 15 }, label));
    const w = ((width - labelW - numW) * value) / max;
    s.append(svg("rect", { x: labelW, y: y + 4, width: Math.max(w, value > 0 ? 2 : 0), height: row - 8, fill: color }));
    s.append(svg("text", { x: labelW + w + 6, y: y + 15 }, String(value)));
  });
  return s;
}

function table(head, rows) {
  const t = el("table");
  const tr = el("tr");
  head.forEach((h, i) => tr.append(el("th", i > 0 ? { class: "num" } : {}, h)));
  t.append(tr);
  for (const r of rows) t.append(r);
  return t;
}

function drawTotals(s) {
  const t = s.totals;
  const tiles = [
    ["accepted", "totals.accepted", t.accepted],
    ["replayed", "totals.replayed", t.replayed],
    ["refused", "totals.refused", t.refused],
    ...OUTCOMES.map((o) => [o, "totals.deliveries." + o, t.deliveries[o] || 0]),
    ["attempts", "totals.attempts", t.attempts],
    ["deliver batches", "totals.batches", t.batches],
    ["records not started", "totals.records_not_started", t.records_not_started],
    ["lease conflicts", "totals.lease_conflicts", t.lease_conflicts],
    ["operational events", "events.total", s.events ? s.events.total : 0],
  ];
  const read = el("p", { class: "muted" });
  read.append(figure("totals.records", t.records), " records in the deliver batches; ",
    figure("totals.documents", t.documents), " metrics lines read, ",
    figure("totals.unreadable", t.unreadable), " unreadable");
  replace("tiles", ...tiles.map(([label, path, v]) => {
    const d = el("div", { class: "tile" });
    const n = figure(path, v);
    n.className = "n";
    d.append(n, el("span", { class: "label" }, label));
    return d;
  }), read);
}

function drawMessages(s) {
  const m = s.messages;
  if (!m) {
    replace("messages", el("p", { class: "empty" }, "no table"));
    return;
  }
  const by = m.by_state || {};
  const chart = hbars(STATES.map((st) => [st, by[st] || 0, COLORS[st]]));
  const rows = STATES.map((st) => {
    const tr = el("tr");
    const td = el("td", { class: "num" });
    td.append(figure("messages.by_state." + st, by[st] || 0));
    tr.append(el("td", {}, st), td);
    return tr;
  });
  const parts = [chart, table(["state", "messages"], rows)];
  const fan = m.fanout_deliveries_by_state || {};
  if (Object.keys(fan).length > 0) {
    parts.push(el("h2", {}, "Fan-out deliveries by state"));
    parts.push(table(["state", "deliveries"], Object.keys(fan).sort().map((st) => {
      const tr = el("tr");
      const td = el("td", { class: "num" });
      td.append(figure("messages.fanout_deliveries_by_state." + st, fan[st]));
      tr.append(el("td", {}, st), td);
      return tr;
    })));
  }
  const note = el("p", { class: "muted" }, `${m.items_scanned} items scanned` + (m.partial ? " (stopped early: partial)" : ""));
  if (m.error) note.textContent += "; last count failed: " + m.error;
  parts.push(note);
  replace("messages", ...parts);
}

function drawRate(s) {
  const r = s.rate;
  document.getElementById("rate-caption").textContent = `last ${r.series.length} s, every outcome`;
  const width = 420, height = 120, bottom = 16;
  const totals = r.series.map((p) => OUTCOMES.reduce((a, o) => a + (p.outcomes[o] || 0), 0));
  const max = Math.max(1, ...totals);
  const bw = width / Math.max(1, r.series.length);
  const c = svg("svg", { width: "100%", viewBox: `0 0 ${width} ${height}`, role: "img" });
  r.series.forEach((p, i) => {
    let y = height - bottom;
    for (const o of OUTCOMES) {
      const v = p.outcomes[o] || 0;
      if (v === 0) continue;
      const h = ((height - bottom - 14) * v) / max;
      y -= h;
      c.append(svg("rect", { x: i * bw + 1, y, width: Math.max(bw - 2, 1), height: h, fill: COLORS[o] }));
    }
  });
  c.append(svg("line", { x1: 0, x2: width, y1: height - bottom, y2: height - bottom, stroke: "#9aa3ad" }));
  c.append(svg("text", { x: 0, y: height - 2 }, `-${r.series.length}s`));
  c.append(svg("text", { x: width - 24, y: height - 2 }, "now"));
  c.append(svg("text", { x: 0, y: 10 }, `max ${max}/s`));
  const now = el("p");
  now.append(figure("rate.per_second", r.per_second), ` deliveries/s over the last ${r.window_seconds} s`);
  replace("rate", now, c, legend(OUTCOMES));
}

function drawLatency(s) {
  const l = s.latency;
  if (l.count === 0) {
    replace("latency", el("p", { class: "empty" }, "no attempt yet"));
    return;
  }
  const chart = hbars([["p50", l.p50, COLORS.p50], ["p90", l.p90, COLORS.p90], ["p99", l.p99, COLORS.p99]]);
  const tr = el("tr");
  for (const k of ["count", "p50", "p90", "p99", "min", "mean", "max"]) {
    const td = el("td", { class: "num" });
    td.append(figure("latency." + k, l[k]));
    tr.append(td);
  }
  replace("latency", chart, table(["attempts", "p50", "p90", "p99", "min", "mean", "max"], [tr]));
}

// drawRows draws the outcomes of each target host or endpoint: a stacked bar and the counts.
function drawRows(id, rows) {
  if (rows.length === 0) {
    replace(id, el("p", { class: "empty" }, "no delivery yet"));
    return;
  }
  const max = Math.max(1, ...rows.map((r) => r.total));
  const trs = rows.map((r) => {
    const tr = el("tr", { "data-key": r.key });
    const name = el("td");
    name.append(el("code", {}, r.key));
    tr.append(name);
    const bar = svg("svg", { width: 200, height: 12, role: "img" });
    let x = 0;
    for (const o of OUTCOMES) {
      const w = (200 * (r.outcomes[o] || 0)) / max;
      if (w > 0) bar.append(svg("rect", { x, y: 0, width: w, height: 12, fill: COLORS[o] }));
      x += w;
    }
    const cell = el("td");
    cell.append(bar);
    tr.append(cell);
    for (const o of [...OUTCOMES, "total"]) {
      const td = el("td", { class: "num" });
      td.append(figure(`${id}[${r.key}].${o}`, o === "total" ? r.total : r.outcomes[o] || 0));
      tr.append(td);
    }
    return tr;
  });
  replace(id, table([id === "endpoints" ? "endpoint" : "host", "", ...OUTCOMES, "total"], trs), legend(OUTCOMES));
}

function drawEvents(s) {
  const e = s.events;
  if (!e) {
    replace("events", el("p", { class: "empty" }, "no event bus"));
    return;
  }
  const types = Object.keys(e.by_detail_type).sort();
  const counts = types.map((t) => {
    const tr = el("tr");
    const td = el("td", { class: "num" });
    td.append(figure(`events.by_detail_type[${t}]`, e.by_detail_type[t]));
    const name = el("td");
    name.append(el("code", {}, t));
    tr.append(name, td);
    return tr;
  });
  const parts = [];
  const total = el("p");
  total.append(figure("events.total", e.total), " received");
  parts.push(total);
  if (types.length > 0) parts.push(table(["detail-type", "events"], counts));
  if (e.recent.length > 0) {
    parts.push(el("h2", {}, "Latest"));
    parts.push(table(["time", "detail-type", "detail"], e.recent.map((ev) => {
      const tr = el("tr");
      const detail = JSON.stringify(ev.detail);
      tr.append(el("td", {}, ev.time.slice(11, 19)), el("td", {}, ev.detail_type),
        el("td", {}, detail.length > 160 ? detail.slice(0, 160) + "…" : detail));
      return tr;
    })));
  }
  replace("events", ...parts);
}

let polls = 0;

async function poll() {
  const state = document.getElementById("state");
  try {
    const res = await fetch("status.json", { cache: "no-store" });
    if (!res.ok) throw new Error("status.json: HTTP " + res.status);
    const s = await res.json();
    drawTotals(s);
    drawMessages(s);
    drawRate(s);
    drawLatency(s);
    drawRows("target_hosts", s.target_hosts);
    drawRows("endpoints", s.endpoints);
    drawEvents(s);
    polls++;
    state.dataset.state = "live";
    state.dataset.polls = String(polls);
    state.textContent = "live, updated " + new Date(s.time).toLocaleTimeString();
  } catch (err) {
    // pushfn run stopped or is busy: say so on the page and try again.
    state.dataset.state = "error";
    state.textContent = "not updating: " + err.message;
  }
  setTimeout(poll, 1000);
}

poll();
