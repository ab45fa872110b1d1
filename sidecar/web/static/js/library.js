// Library page: coverage per analyzer (live over /api/events) and the searchable, filterable, paged track list.
import { api, duration, el, fmt, requireSession, say, setUpHeader } from "./api.js";
import { ALL_CAMELOT, keyName } from "./keys.js";

const PAGE_SIZE = 25;
const STATES = ["done", "pending", "queued", "running", "stale", "failed"];
const FIELDS = ["q", "bpm_min", "bpm_max", "half_double", "key", "camelot_compatible", "loudness_min_lufs", "loudness_max_lufs", "sort"];
let offset = 0; // the position of the page shown
let cursors = []; // cursors[n]: the `after` of page n (keyset: a deep page costs what the first does)
let cursorsOf = ""; // the filters and sort those cursors belong to
let refreshTimer = null;

async function loadCoverage() {
  const report = await api("/api/status");
  const box = document.getElementById("coverage");
  box.replaceChildren();
  for (const [name, counts] of Object.entries(report.analyzers || {})) {
    const total = STATES.reduce((sum, state) => sum + (counts[state] || 0), 0) || 1;
    const bar = el("div", { className: "bar", role: "img" });
    bar.setAttribute("aria-label", `${name}: ${counts.done || 0} of ${total} done`);
    for (const state of STATES) {
      if (!counts[state]) continue;
      const part = el("span", { className: state, title: `${state}: ${counts[state]}` });
      part.style.width = `${(100 * counts[state]) / total}%`;
      bar.append(part);
    }
    const list = el("ul", { className: "counts" });
    for (const state of STATES) list.append(el("li", {}, `${state} ${counts[state] || 0}`));
    const card = el("div", { className: "card" }, el("h3", {}, `${name} v${counts.version}`), bar, list);
    card.dataset.analyzer = name;
    box.append(card);
  }
  const queues = Object.entries(report.queues || {}).map(([queue, depth]) => `${queue} ${depth}`);
  document.getElementById("queues").textContent = `Queues: ${queues.join(" · ") || "–"} · workers: ${(report.workers || []).length}`;
}

function follow() {
  const live = document.getElementById("live");
  const events = new EventSource("/api/events");
  const refresh = () => {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(() => loadCoverage().catch(() => {}), 500);
  };
  events.onopen = () => {
    live.textContent = "live";
    live.classList.add("on");
  };
  events.onerror = () => {
    live.textContent = "reconnecting…";
    live.classList.remove("on");
  };
  events.addEventListener("AnalysisReady", refresh);
  events.addEventListener("StemsReady", refresh);
}

function readForm() {
  const form = document.getElementById("filters");
  const params = new URLSearchParams();
  for (const name of FIELDS) {
    const input = form.elements[name];
    if (input.type === "checkbox") {
      if (input.checked) params.set(name, "true");
    } else if (input.value.trim() !== "" && !(name === "sort" && input.value === "artist")) {
      params.set(name, input.value.trim());
    }
  }
  return params;
}

function writeForm(params) {
  const form = document.getElementById("filters");
  for (const name of FIELDS) {
    const input = form.elements[name];
    if (input.type === "checkbox") input.checked = params.get(name) === "true";
    else input.value = params.get(name) || (name === "sort" ? "artist" : "");
  }
}

function row(track) {
  const cell = (label, content, className = "") => {
    const td = el("td", { className }, ...[content].flat());
    td.dataset.label = label;
    return td;
  };
  const link = el("a", { href: `/track.html?id=${track.track_id}` }, track.title || "(untitled)");
  const key = track.camelot ? `${track.camelot} · ${keyName(track.camelot)}` : "–";
  const yours = (group, text) => (track.overridden.includes(group) ? [text, " ", el("small", { title: "set by you" }, "(yours)")] : [text]);
  return el(
    "tr",
    {},
    cell("Title", link, "title"),
    cell("Artist", track.artist || "–"),
    cell("Album", track.album || "–"),
    cell("BPM", yours("bpm", fmt(track.bpm)), "num"),
    cell("Key", yours("key", key)),
    cell("Loudness", fmt(track.loudness_lufs, 1, "LUFS"), "num"),
    cell("Length", duration(track.duration_s), "num"),
  );
}

async function loadTracks() {
  const status = document.getElementById("list-status");
  const params = readForm();
  history.replaceState(null, "", params.toString() ? `?${params}` : location.pathname);
  if (params.toString() !== cursorsOf) {
    cursorsOf = params.toString();
    cursors = [];
  }
  params.set("limit", PAGE_SIZE);
  const cursor = cursors[offset / PAGE_SIZE];
  if (cursor) params.set("after", cursor);
  else params.set("offset", offset);
  say(status, "Loading…");
  const [listed, next] = [cursors, offset / PAGE_SIZE + 1];
  try {
    const page = await api(`/api/tracks?${params}`);
    document.querySelector("#tracks tbody").replaceChildren(...page.tracks.map(row));
    const first = page.total ? offset + 1 : 0;
    const last = offset + page.tracks.length;
    document.getElementById("page-info").textContent = `${first}–${last} of ${page.total}`;
    document.getElementById("prev").disabled = offset === 0;
    document.getElementById("next").disabled = last >= page.total;
    listed[next] = page.next_cursor; // kept only while the filters stay the same
    say(status, page.total ? "" : "No track matches these filters.");
  } catch (error) {
    say(status, error.message, "error");
  }
}

async function main() {
  const session = await requireSession();
  if (!session) return;
  setUpHeader(session);
  document.getElementById("camelot-codes").replaceChildren(...ALL_CAMELOT.map((code) => el("option", { value: code }, keyName(code))));
  writeForm(new URLSearchParams(location.search));
  const form = document.getElementById("filters");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    offset = 0;
    loadTracks();
  });
  form.addEventListener("reset", () => {
    setTimeout(() => {
      offset = 0;
      loadTracks();
    });
  });
  document.getElementById("prev").addEventListener("click", () => {
    offset = Math.max(0, offset - PAGE_SIZE);
    loadTracks();
  });
  document.getElementById("next").addEventListener("click", () => {
    offset += PAGE_SIZE;
    loadTracks();
  });
  await Promise.all([loadCoverage().catch((error) => say(document.getElementById("queues"), error.message, "error")), loadTracks()]);
  follow();
}

main();
