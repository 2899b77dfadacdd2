// MTL Studio span picker: drag over words (or click one) to make an entity span, pick its type with a number
// key or a click; click a span to change its type (number key) or remove it (Delete). No network, no
// libraries; every piece of text is inserted with textContent, never as HTML.
"use strict";

const state = { text: "", words: [], spans: [], labels: [], colors: [], sel: null, active: -1, anchor: -1,
                dragging: false, moved: false, disabled: false };
const nonce = Math.random().toString(36).slice(2);
let counter = 0;

function send(type, data) {
  window.parent.postMessage(Object.assign({ isStreamlitMessage: true, type: type }, data), "*");
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function spanOfWord(i) {
  const [ws, we] = state.words[i];
  return state.spans.findIndex((s) => ws < s.end && s.start < we);
}

function commit(spans) {
  counter += 1;
  state.spans = spans.slice().sort((a, b) => a.start - b.start);
  send("streamlit:setComponentValue", { value: { spans: state.spans, rev: nonce + ":" + counter }, dataType: "json" });
  try { window.parent.focus(); } catch (e) { /* the page's own shortcuts work again once it has the focus */ }
}

function addSpan(label) {
  const a = Math.min(state.sel.a, state.sel.b), b = Math.max(state.sel.a, state.sel.b);
  const start = state.words[a][0], end = state.words[b][1];
  const kept = state.spans.filter((s) => s.end <= start || s.start >= end);  // a new span replaces overlaps
  state.sel = null;
  commit(kept.concat([{ start: start, end: end, label: label }]));
}

function pick(index) {
  const label = state.labels[index];
  if (label === undefined || state.disabled) return;
  if (state.sel) {
    addSpan(label);
  } else if (state.active >= 0) {
    const spans = state.spans.map((s, i) => (i === state.active ? { start: s.start, end: s.end, label: label } : s));
    state.active = -1;
    commit(spans);
  }
  render();
}

function removeActive() {
  if (state.active < 0 || state.disabled) return;
  const spans = state.spans.filter((_, i) => i !== state.active);
  state.active = -1;
  commit(spans);
  render();
}

function paintSelection() {
  // Selection and the active span change classes only: the word elements under the mouse stay the same.
  const lo = state.sel ? Math.min(state.sel.a, state.sel.b) : -1;
  const hi = state.sel ? Math.max(state.sel.a, state.sel.b) : -1;
  document.querySelectorAll("#text .w").forEach((word) => {
    const i = Number(word.dataset.i);
    word.classList.toggle("sel", i >= lo && i <= hi);
    word.classList.toggle("active", state.active >= 0 && spanOfWord(i) === state.active);
  });
  renderPalette();
}

function renderText() {
  const box = document.getElementById("text");
  box.replaceChildren();
  let pos = 0;
  state.words.forEach(([ws, we], i) => {
    if (ws > pos) box.appendChild(document.createTextNode(state.text.slice(pos, ws)));
    const word = el("span", "w", state.text.slice(ws, we));
    word.dataset.i = String(i);
    const k = spanOfWord(i);
    if (k >= 0) {
      word.style.background = state.colors[state.labels.indexOf(state.spans[k].label)] || "#dddddd";
      word.style.color = "#222";
    }
    box.appendChild(word);
    const next = i + 1 < state.words.length ? spanOfWord(i + 1) : -1;
    if (k >= 0 && next !== k) box.appendChild(el("span", "chip", state.spans[k].label));
    pos = we;
  });
  if (pos < state.text.length) box.appendChild(document.createTextNode(state.text.slice(pos)));
}

function renderPalette() {
  const palette = document.getElementById("palette");
  palette.replaceChildren();
  const current = state.active >= 0 ? state.spans[state.active].label : null;
  state.labels.forEach((label, i) => {
    const button = el("button", label === current ? "current" : "", (i < 9 ? (i + 1) + " " : "") + label);
    button.style.background = state.colors[i] || "#dddddd";
    button.disabled = state.disabled || (!state.sel && state.active < 0);
    button.addEventListener("click", () => pick(i));
    palette.appendChild(button);
  });
  if (state.active >= 0) {
    const remove = el("button", "", "Remove span (Del)");
    remove.disabled = state.disabled;
    remove.addEventListener("click", removeActive);
    palette.appendChild(remove);
  }
  document.getElementById("hint").textContent = state.sel ? "Pick the type: a number key or a button (Esc cancels)."
    : state.active >= 0 ? "Change the type with a number key, or remove the span with Delete."
    : "Drag over words (or click one) to mark an entity; click a marked span to change or remove it.";
}

function render() {
  renderText();
  paintSelection();
  send("streamlit:setFrameHeight", { height: document.documentElement.scrollHeight });
}

function wordIndex(target) {
  const node = target && target.closest ? target.closest(".w") : null;
  return node ? Number(node.dataset.i) : -1;
}

document.addEventListener("mousedown", (event) => {
  const i = wordIndex(event.target);
  if (i < 0 || state.disabled) return;
  event.preventDefault();  // no native text selection; so the focus is taken explicitly, for the number keys
  window.focus();
  Object.assign(state, { dragging: true, moved: false, anchor: i, sel: { a: i, b: i }, active: -1 });
  paintSelection();
});

document.addEventListener("mouseover", (event) => {
  const i = wordIndex(event.target);
  if (!state.dragging || i < 0 || (state.sel && i === state.sel.b)) return;
  state.moved = true;
  state.sel = { a: state.anchor, b: i };
  paintSelection();
});

document.addEventListener("mouseup", () => {
  if (!state.dragging) return;
  state.dragging = false;
  const k = spanOfWord(state.anchor);
  if (!state.moved && k >= 0) {  // a click on a marked word selects its span
    state.sel = null;
    state.active = k;
  }
  paintSelection();
});

document.addEventListener("keydown", (event) => {
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  if (/^[1-9]$/.test(event.key)) {
    pick(Number(event.key) - 1);
    event.preventDefault();
  } else if (event.key === "Delete" || event.key === "Backspace") {
    removeActive();
    event.preventDefault();
  } else if (event.key === "Escape") {
    Object.assign(state, { sel: null, active: -1 });
    paintSelection();
  }
});

window.addEventListener("message", (event) => {
  if (!event.data || event.data.type !== "streamlit:render") return;
  const args = event.data.args || {};
  Object.assign(state, { text: String(args.text || ""), words: args.words || [], spans: args.spans || [],
                         labels: args.labels || [], colors: args.colors || [], disabled: !!event.data.disabled });
  if (state.active >= state.spans.length) state.active = -1;
  const theme = event.data.theme;
  if (theme) {
    document.body.style.color = theme.textColor || "";
    document.body.style.fontFamily = theme.font || "";
  }
  render();
});

new ResizeObserver(() => send("streamlit:setFrameHeight", { height: document.documentElement.scrollHeight }))
  .observe(document.body);
send("streamlit:componentReady", { apiVersion: 1 });
