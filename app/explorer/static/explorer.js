// circuitlake explorer: the overview's plots, and the node-link drawings of circuits and graphs (cytoscape.js).
"use strict";

function pageData() {
  const el = document.getElementById("page-data");
  return el ? JSON.parse(el.textContent) : null;
}

function unitKey(layer, neuron) { return "L" + layer + "/N" + neuron; }

function atlasQuery(atlas) { return "?atlas=" + encodeURIComponent(atlas); }

function edgeStyle(weight, strongest) {
  return { color: weight < 0 ? "#c44e52" : "#4c72b0", width: 0.5 + 4 * Math.abs(weight) / (strongest || 1) };
}

const STYLE = [
  { selector: "node", style: { "background-color": "data(color)", "label": "data(label)", "font-size": 9, "width": 12, "height": 12,
                                "text-valign": "top", "text-wrap": "ellipsis", "text-max-width": 140 } },
  { selector: "edge", style: { "line-color": "data(color)", "width": "data(width)", "opacity": 0.6, "curve-style": "bezier",
                                "target-arrow-shape": "triangle", "target-arrow-color": "data(color)", "arrow-scale": 0.6 } },
];

// a layered drawing: members by layer (left to right), stacked within their layer; a click opens the neuron
function drawCircuit(container, data) {
  const perLayer = {};
  const elements = [];
  for (const m of data.members) {
    const row = perLayer[m.layer] = (perLayer[m.layer] || 0) + 1;
    const text = m.label || m.output_label || m.input_label || "";
    elements.push({ group: "nodes", data: { id: unitKey(m.layer, m.neuron), label: unitKey(m.layer, m.neuron) + " " + text,
                    color: "#222", href: "/neuron/" + unitKey(m.layer, m.neuron) + atlasQuery(data.atlas) },
                    position: { x: m.layer * 220, y: row * 46 + (m.layer % 2) * 18 } });
  }
  const strongest = Math.max(0, ...data.edges.map(e => e.mean_abs_weight));
  data.edges.forEach((e, i) => {
    const s = edgeStyle(e.mean_weight, strongest);
    elements.push({ group: "edges", data: { id: "e" + i, source: unitKey(e.src_layer, e.src_neuron), target: unitKey(e.tgt_layer, e.tgt_neuron),
                    color: s.color, width: s.width } });
  });
  return render(container, elements);
}

function graphNodeId(kind, layer, feature, position) { return [kind, layer, feature, position].join(":"); }

// one attribution graph: embeddings at the bottom, logits at the top, units by layer; x is the token position
function drawGraph(container, data) {
  const layers = data.nodes.filter(n => n.layer !== null).map(n => n.layer);
  const top = (layers.length ? Math.max(...layers) : 0) + 1;
  const stacked = {};
  const elements = data.nodes.map(n => {
    const level = n.kind === "embedding" ? -1 : n.kind === "logit" ? top : n.layer;
    const slot = [level, n.position].join(":");
    const row = stacked[slot] = (stacked[slot] || 0) + 1;
    const unit = n.kind === "neuron" || n.kind === "transcoder";
    const name = unit ? unitKey(n.layer, n.feature) : n.kind + " " + n.feature;
    return { group: "nodes", data: { id: graphNodeId(n.kind, n.layer, n.feature, n.position), label: name + (n.label ? " " + n.label : n.clerp ? " " + n.clerp : ""),
             color: unit ? "#222" : n.kind === "error" ? "#aaa" : "#2a9d8f",
             href: unit ? "/neuron/" + unitKey(n.layer, n.feature) + atlasQuery(data.atlas) : null },
             position: { x: n.position * 160 + (row - 1) * 14, y: -level * 90 - (row - 1) * 10 } };
  });
  const strongest = Math.max(0, ...data.links.map(l => Math.abs(l.weight)));
  data.links.forEach((l, i) => {
    const s = edgeStyle(l.weight, strongest);
    elements.push({ group: "edges", data: { id: "l" + i, source: graphNodeId(l.src_kind, l.src_layer, l.src_feature, l.src_pos),
                    target: graphNodeId(l.tgt_kind, l.tgt_layer, l.tgt_feature, l.tgt_pos), color: s.color, width: s.width } });
  });
  const counts = document.getElementById("graph-counts");
  if (counts) counts.textContent = data.links.length + " of " + data.links_total + " links, " + data.nodes.length + " of " + data.nodes_total + " nodes drawn";
  return render(container, elements);
}

function render(container, elements) {
  if (container.cy) container.cy.destroy();
  const cy = cytoscape({ container: container, elements: elements, style: STYLE, layout: { name: "preset" }, wheelSensitivity: 0.3 });
  cy.fit(undefined, 20);
  cy.on("tap", "node", evt => { const href = evt.target.data("href"); if (href) window.location.href = href; });
  container.cy = cy;
  container.dataset.nodes = cy.nodes().length;
  container.dataset.edges = cy.edges().length;
  container.dataset.drawn = "true";
  return cy;
}

function loadPlots() {
  for (const el of document.querySelectorAll("[data-plots]")) {
    fetch(el.dataset.plots).then(r => r.text()).then(text => { el.innerHTML = text; el.dataset.loaded = "true"; });
  }
}

function startDrawing() {
  const container = document.getElementById("drawing");
  const data = pageData();
  if (!container || !data) return;
  if (container.dataset.kind === "circuit") return drawCircuit(container, data);
  drawGraph(container, data);
  const form = document.getElementById("threshold-form");
  form.addEventListener("submit", evt => {
    evt.preventDefault();
    const min = document.getElementById("min-weight").value || "0";
    fetch(container.dataset.api + "&min_weight=" + encodeURIComponent(min)).then(r => r.json()).then(fresh => {
      if (fresh.error) { document.getElementById("graph-counts").textContent = fresh.error; return; }
      drawGraph(container, fresh);
      history.replaceState(null, "", "?atlas=" + encodeURIComponent(fresh.atlas) + "&min_weight=" + encodeURIComponent(min));
    });
  });
}

document.addEventListener("DOMContentLoaded", () => { loadPlots(); startDrawing(); });
