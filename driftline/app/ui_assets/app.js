// Driftline's page: polls /api/dashboard and draws it. Every value goes in as text (never as HTML).
"use strict";
const COLORS = { accuracy: "#1565c0", roc_auc: "#6a1b9a", expected_accuracy: "#ef6c00", label_coverage: "#2e7d32" };
const SVG = "http://www.w3.org/2000/svg";

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, v);
  for (const c of children) el.append(c instanceof Node ? c : document.createTextNode(c == null ? "" : String(c)));
  return el;
}
function s(tag, attrs, text) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, v);
  if (text != null) el.textContent = String(text);
  return el;
}
const num = (x, d = 3) => (x == null ? "–" : Number(x).toPrecision(d));
const win = (w) => (w ? `#${w.start_index}–#${w.end_index}` + (w.n != null ? ` (${w.n})` : "") : "–");

function table(head, rows, cls) {
  const t = h("table", cls ? { class: cls } : {}, h("thead", {}, h("tr", {}, ...head.map((x) => h("th", {}, x)))));
  const body = h("tbody");
  for (const r of rows) body.append(r);
  t.append(body);
  return t;
}

function versions(m) {
  const rows = m.versions.map((v) => {
    const lineage = v.incident
      ? h("span", {}, "retrained after incident ", h("a", { href: `#incident-${v.incident}` }, v.incident), ` (${v.incident_title})`)
      : v.triggered_by || "–";
    const tr = h("tr", { class: "version" + (v.version === m.champion ? " champion" : ""), "data-version": v.version },
      h("td", {}, `v${v.version}` + (v.version === m.champion ? " (champion)" : "")),
      h("td", {}, v.stage || ""),
      h("td", {}, v.previous_version ? `v${v.previous_version}` : "–"),
      h("td", { class: "lineage" }, lineage),
      h("td", {}, win(v.trained_on)),
      h("td", {}, win(v.validated_on)),
      h("td", {}, Object.entries(v.metrics || {}).map(([k, x]) => `${k} ${num(x)}`).join(", ") || "–"));
    return tr;
  });
  return table(["version", "stage", "replaces", "triggered by", "trained on", "validated on", "metrics"], rows);
}

function chart(quality) {
  const names = Object.keys(quality);
  const W = 760, H = 220, L = 40, R = 10, T = 10, B = 24;
  const svg = s("svg", { width: W, height: H, viewBox: `0 0 ${W} ${H}`, class: "quality-chart", role: "img" });
  if (!names.length) { svg.append(s("text", { x: L, y: H / 2 }, "no metrics (the store holds none: open the page from a demo or Kafka)")); return svg; }
  const xs = names.flatMap((n) => quality[n].map((p) => p[0]));
  const x0 = Math.min(...xs), x1 = Math.max(...xs) || 1;
  const X = (x) => L + ((x - x0) / Math.max(1, x1 - x0)) * (W - L - R);
  const Y = (y) => T + (1 - Math.max(0, Math.min(1, y))) * (H - T - B);
  for (const g of [0, 0.25, 0.5, 0.75, 1]) {
    svg.append(s("line", { x1: L, x2: W - R, y1: Y(g), y2: Y(g), stroke: "#eceff3" }));
    svg.append(s("text", { x: 4, y: Y(g) + 4 }, g.toFixed(2)));
  }
  svg.append(s("text", { x: L, y: H - 6 }, `#${x0}`));
  svg.append(s("text", { x: W - R - 60, y: H - 6 }, `#${x1}`));
  // where each version's points begin: the retrain shows as a boundary
  const acc = quality.accuracy || quality[names[0]];
  let prev = null;
  for (const [x, , v] of acc) {
    if (prev !== null && v !== prev) {
      svg.append(s("line", { x1: X(x), x2: X(x), y1: T, y2: H - B, stroke: "#9aa3b5", "stroke-dasharray": "4 3" }));
      svg.append(s("text", { x: X(x) + 3, y: T + 10 }, `v${v}`));
    }
    prev = v;
  }
  for (const n of names) {
    const pts = quality[n].map((p) => `${X(p[0]).toFixed(1)},${Y(p[1]).toFixed(1)}`).join(" ");
    svg.append(s("polyline", { points: pts, fill: "none", stroke: COLORS[n] || "#555", "stroke-width": 1.5, "data-metric": n }));
  }
  return svg;
}

function legend(quality) {
  return h("div", { class: "legend" }, ...Object.keys(quality).map((n) => {
    const last = quality[n][quality[n].length - 1];
    const i = h("i"); i.style.background = COLORS[n] || "#555";
    return h("span", {}, i, `${n} ${num(last[1])} (v${last[2]})`);
  }));
}

function drift(rows) {
  return table(["feature", "state", "version", "statistic", "value", "threshold", "p-value", "window", "reference", "detected at"],
    rows.map((r) => h("tr", { class: "drift-row", "data-feature": r.feature },
      h("td", {}, r.feature),
      h("td", { class: r.drifted ? "drifted" : "ok" }, r.drifted ? "drift" : "no drift"),
      h("td", {}, r.version ? `v${r.version}` : "–"),
      h("td", {}, r.statistic || "–"),
      h("td", {}, num(r.value)),
      h("td", {}, num(r.threshold)),
      h("td", {}, num(r.p_value)),
      h("td", {}, win(r.window)),
      h("td", {}, win(r.reference)),
      h("td", {}, r.detected_at != null ? `#${r.detected_at}` : "–"))));
}

function model(m) {
  return h("section", { class: "model", "data-model": m.model },
    h("h2", {}, `Model ${m.model}`, h("span", { class: "muted" }, m.champion ? ` — champion v${m.champion}` : "")),
    h("h3", {}, "Versions and lineage"), versions(m),
    h("h3", {}, "Quality over time"), chart(m.quality), legend(m.quality),
    h("h3", {}, "Drift per feature"), drift(m.drift));
}

function incidents(list) {
  if (!list.length) return h("p", { class: "muted" }, "none");
  return table(["id", "state", "severity", "model", "kind", "features", "alerts", "since", "evidence"],
    list.map((i) => h("tr", { class: "incident", id: `incident-${i.id}`, "data-status": i.status },
      h("td", {}, i.id),
      h("td", { class: i.status }, i.status),
      h("td", {}, i.severity),
      h("td", {}, `${i.model} v${i.version}`),
      h("td", {}, i.kind, h("div", { class: "muted" }, i.title)),
      h("td", {}, i.features.join(", ") || "–"),
      h("td", {}, i.alerts),
      h("td", {}, `#${i.started_at}`),
      h("td", {}, ...(i.evidence.length ? i.evidence.map((e) => h("div", {}, h("a", { href: e.url, class: "evidence" }, e.name))) : ["–"])))));
}

function render(d) {
  document.getElementById("models").replaceChildren(...d.models.map(model));
  document.getElementById("incidents-open").replaceChildren(incidents(d.incidents.filter((i) => i.status !== "resolved")));
  document.getElementById("incidents-resolved").replaceChildren(incidents(d.incidents.filter((i) => i.status === "resolved")));
  document.getElementById("retrains").replaceChildren(d.retrains.length
    ? table(["model", "outcome", "version", "reason"], d.retrains.map((r) => h("tr", { class: "retrain" },
        h("td", {}, r.model), h("td", {}, r.status), h("td", {}, r.version ? `v${r.version}` : "–"), h("td", {}, r.reason))))
    : h("p", { class: "muted" }, "none"));
  document.getElementById("status").textContent = `${d.source} · updated ${new Date(d.generated_at * 1000).toLocaleTimeString()}`;
  document.body.setAttribute("data-loaded", "1");
}

async function poll() {
  try {
    const r = await fetch("/api/dashboard", { cache: "no-store" });
    const d = await r.json();
    if (!r.ok) throw new Error(d.error || r.status);
    render(d);
  } catch (e) {
    document.getElementById("status").textContent = `cannot read the dashboard: ${e.message} (retrying)`;
  }
  setTimeout(poll, 3000);
}
poll();
