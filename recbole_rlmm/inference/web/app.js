// The page of `recbole-rlmm serve`: plain JavaScript over the server's own JSON API.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { model: null, history: [] };

async function api(path, options) {
  const response = await fetch(path, options);
  let body = null;
  try { body = await response.json(); } catch (e) { body = null; }
  if (!response.ok) {
    throw new Error((body && body.detail) || `${response.status} ${response.statusText}`);
  }
  return body;
}

function showError(error) {
  const box = $("error");
  box.textContent = error ? String(error.message || error) : "";
  box.hidden = !error;
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = text;
  return node;
}

function sharesBar(shares) {
  const box = el("div", "shares");
  if (!shares) return box;
  const bar = el("div", "bar");
  const parts = [];
  for (const [modality, share] of Object.entries(shares)) {
    const span = el("span", `share share-${modality}`);
    span.style.width = `${Math.round(share * 1000) / 10}%`;
    span.title = `${modality} ${share.toFixed(2)}`;
    bar.appendChild(span);
    parts.push(`${modality} ${share.toFixed(2)}`);
  }
  box.appendChild(bar);
  box.appendChild(el("small", "muted", parts.join(" · ")));
  return box;
}

function card(detail, options) {
  const node = el("div", "card");
  node.dataset.item = detail.item;
  node.tabIndex = 0;
  node.title = "show similar items";
  if (options.rank) node.appendChild(el("span", "rank", String(options.rank)));
  if (detail.image) {
    const img = el("img");
    img.src = detail.image;
    img.alt = detail.title || detail.item;
    img.loading = "lazy";
    node.appendChild(img);
  } else {
    node.appendChild(el("div", "noimg", "no picture"));
  }
  node.appendChild(el("div", "title", detail.title || detail.item));
  const meta = [`item ${detail.item}`, `${detail.train_interactions} interactions`];
  if (options.score !== undefined) meta.unshift(`score ${options.score.toFixed(3)}`);
  node.appendChild(el("div", "meta muted", meta.join(" · ")));
  node.appendChild(sharesBar(detail.shares));
  if (options.add) {
    const add = el("button", "secondary small", "+ history");
    add.type = "button";
    add.addEventListener("click", (event) => { event.stopPropagation(); addToHistory(detail); });
    node.appendChild(add);
  }
  node.addEventListener("click", () => showSimilar(detail));
  node.addEventListener("keydown", (event) => { if (event.key === "Enter") showSimilar(detail); });
  return node;
}

function fill(sectionId, listId, titleId, title, details, scores, options = {}) {
  const list = $(listId);
  list.replaceChildren();
  details.forEach((detail, n) => {
    list.appendChild(card(detail, {
      rank: options.ranked ? n + 1 : undefined,
      score: scores ? scores[n] : undefined,
      add: options.add,
    }));
  });
  $(titleId).textContent = title;
  $(sectionId).hidden = false;
}

function k() { return Number($("k").value); }

async function recommendUser(user) {
  showError(null);
  const token = encodeURIComponent(user);
  const exclude = $("exclude-valid").checked;
  try {
    const [history, recs] = await Promise.all([
      api(`/users/${token}/history?limit=50&details=true`),
      api(`/users/${token}/recommendations?k=${k()}&details=true&exclude_valid=${exclude}`),
    ]);
    const shown = history.items.length < history.total ? ` (first ${history.items.length} shown)` : "";
    fill("history-section", "history", "history-title",
      `History of user ${user}: ${history.total} training items${shown}`, history.details, null);
    fill("recs-section", "recs", "recs-title",
      `Top ${recs.items.length} for user ${user} (${recs.excluded} left out)`, recs.details, recs.scores,
      { ranked: true });
    $("similar-section").hidden = true;
  } catch (error) { showError(error); }
}

async function recommendNew() {
  showError(null);
  try {
    const body = { items: state.history.map((d) => d.item), k: k(), details: true };
    const recs = await api("/recommendations", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
    fill("history-section", "history", "history-title",
      `History of the new user: ${state.history.length} items`, state.history, null);
    fill("recs-section", "recs", "recs-title",
      `Top ${recs.items.length} for the new user (fold-in: ${recs.fold_in})`, recs.details, recs.scores,
      { ranked: true });
    $("similar-section").hidden = true;
  } catch (error) { showError(error); }
}

async function showSimilar(detail) {
  showError(null);
  try {
    const similar = await api(`/items/${encodeURIComponent(detail.item)}/similar?k=${k()}&details=true`);
    fill("similar-section", "similar", "similar-title",
      `Similar to ${detail.title || detail.item}`, similar.details, similar.scores, { ranked: true });
    $("similar-section").scrollIntoView({ behavior: "smooth", block: "start" });
  } catch (error) { showError(error); }
}

function renderChips() {
  const box = $("new-history");
  box.replaceChildren();
  for (const detail of state.history) {
    const chip = el("span", "chip", detail.title || detail.item);
    const remove = el("button", "chip-x", "×");
    remove.type = "button";
    remove.title = "remove";
    remove.addEventListener("click", () => {
      state.history = state.history.filter((d) => d.item !== detail.item);
      renderChips();
    });
    chip.appendChild(remove);
    box.appendChild(chip);
  }
  $("new-go").disabled = state.history.length === 0;
}

function addToHistory(detail) {
  if (!state.history.some((d) => d.item === detail.item)) state.history.push(detail);
  renderChips();
}

async function search(query) {
  showError(null);
  try {
    const found = await api(`/items?q=${encodeURIComponent(query)}&limit=12&details=true`);
    const list = $("search-results");
    list.replaceChildren();
    for (const detail of found.details) {
      const row = el("li", "result");
      row.dataset.item = detail.item;
      const add = el("button", "small", "+");
      add.type = "button";
      add.title = "add to the history";
      add.addEventListener("click", () => addToHistory(detail));
      row.appendChild(add);
      row.appendChild(el("span", null, detail.title || detail.item));
      row.appendChild(el("small", "muted", ` ${detail.train_interactions} interactions`));
      list.appendChild(row);
    }
    if (!found.details.length) list.appendChild(el("li", "muted", "no item matches"));
  } catch (error) { showError(error); }
}

let userTimer = null;
async function suggestUsers(prefix) {
  try {
    const found = await api(`/users?q=${encodeURIComponent(prefix)}&limit=20`);
    const list = $("user-list");
    list.replaceChildren();
    for (const user of found.users) {
      const option = el("option");
      option.value = user;
      list.appendChild(option);
    }
    return found;
  } catch (error) { showError(error); return null; }
}

async function init() {
  try {
    const model = await api("/model");
    state.model = model;
    $("model-name").textContent = `${model.model} on ${model.dataset}`;
    $("model-meta").textContent =
      `${model.users} users · ${model.items} items · fold-in: ${model.fold_in.method}` +
      (model.modalities.length ? ` · modalities: ${model.modalities.join(", ")}` : "");
    document.title = `${model.model} on ${model.dataset} · recbole-rlmm`;
  } catch (error) { showError(error); }
  suggestUsers("");
  $("user-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const user = $("user-input").value.trim();
    if (user) recommendUser(user); else showError(new Error("type a user token first (or pick a random user)"));
  });
  $("user-input").addEventListener("input", () => {
    clearTimeout(userTimer);
    userTimer = setTimeout(() => suggestUsers($("user-input").value.trim()), 150);
  });
  $("user-random").addEventListener("click", async () => {
    const found = await suggestUsers("");
    if (!found || !found.users.length) return;
    const user = found.users[Math.floor(Math.random() * found.users.length)];
    $("user-input").value = user;
    recommendUser(user);
  });
  $("search-form").addEventListener("submit", (event) => {
    event.preventDefault();
    search($("search-input").value);
  });
  $("new-go").addEventListener("click", recommendNew);
  $("new-clear").addEventListener("click", () => { state.history = []; renderChips(); });
}

init();
