// Track page: the stored analysis, compatible keys, Sonic Match neighbours, playlists on the host, stems.
import { api, duration, el, fmt, requireSession, say, setUpHeader } from "./api.js";
import { compatible, keyName } from "./keys.js";
import { showWaveform } from "./waveform.js";

const trackId = Number(new URLSearchParams(location.search).get("id"));
let analysis = null;
// "Sure keys only" for a harmonic mix: below this key confidence the key agreed with another analyzer (Essentia)
// on 36 % of real excerpts, at or above it on 85-92 % (docs/api.md, harmonic mix).
const SURE_KEY_CONFIDENCE = 0.25;

function fact(label, value, note = "") {
  const dd = el("dd", {}, value);
  if (note) dd.append(" ", el("small", {}, note));
  return el("div", {}, el("dt", {}, label), dd);
}

// Why an analyzer found no value (`bpm_missing_reason`, `key_missing_reason`; docs/api.md), in words.
const MISSING = {
  bpm: {
    label: "No tempo",
    too_short: "too short to measure",
    no_onsets: "held notes or silence, without beats",
    no_periodicity: "the sounds do not repeat at a steady beat",
  },
  key: {
    label: "No key",
    few_tonal_frames: "too little pitched sound",
    weak_tonality: "the sound does not settle in a key",
  },
};

function yours(a, group, analyzerValue) {
  if (!a.overridden.includes(group)) return "";
  const read = a.analyzed[group];
  const why = MISSING[group][a.analyzed[`${group}_missing_reason`]];
  const nothing = why ? `nothing: ${why}` : "nothing";
  return `set by you · the analyzer read ${read === null || read === undefined ? nothing : analyzerValue(read)}`;
}

function missing(a, group, analyzer) {
  // The analyzer ran and found nothing; rows analysed before reasons were recorded have none (docs/tempo.md).
  if (a[group] !== null || !(analyzer in a.analyzer_versions)) return "";
  const why = MISSING[group][a[`${group}_missing_reason`]];
  if (why) return `${MISSING[group].label}: ${why}`;
  return group === "bpm" ? "no steady beat found" : "no key found";
}

function showAnalysis(a) {
  const confidence = a.bpm_confidence === null ? "" : `confidence ${Math.round(a.bpm_confidence * 100)} %`;
  const alternative = a.bpm_alternative ? ` · or ${fmt(a.bpm_alternative)}` : "";
  const key = a.key ? `${a.key}` : "–";
  const keyNote = a.camelot ? `${a.camelot}${a.key_confidence === null ? "" : ` · ${Math.round(a.key_confidence * 100)} %`}` : "";
  document.getElementById("facts").replaceChildren(
    fact("BPM", fmt(a.bpm), [yours(a, "bpm", (v) => fmt(v)) || confidence + alternative, missing(a, "bpm", "tempo"), a.host_bpm ? `the file's tag says ${fmt(a.host_bpm)}` : ""].filter(Boolean).join(" · ")),
    fact("Key", key, [keyNote, yours(a, "key", (v) => v), missing(a, "key", "key")].filter(Boolean).join(" · ")),
    fact("Loudness", fmt(a.loudness_lufs, 1, "LUFS")),
    fact("Loudness range", fmt(a.loudness_range_lu, 1, "LU")),
    fact("True peak", fmt(a.true_peak_dbtp, 1, "dBTP")),
    fact("ReplayGain", fmt(a.replaygain_track_gain_db, 2, "dB"), a.replaygain_track_peak === null ? "" : `peak ${fmt(a.replaygain_track_peak, 3)}`),
    fact("Length", duration(a.duration_s)),
  );
  const chips = compatible(a.camelot).map((code) =>
    el("li", {}, el("a", { href: `/?key=${code}`, title: `library tracks in ${code}` }, `${code} · ${keyName(code)}`)),
  );
  document.getElementById("compatible").replaceChildren(...(chips.length ? chips : [el("li", { className: "muted" }, "no key yet")]));
  const tags = (a.tags || []).slice(0, 8).map((tag) => el("li", {}, el("span", { title: tag.category }, `${tag.tag} ${Math.round(tag.probability * 100)} %`)));
  document.getElementById("tags").replaceChildren(...(tags.length ? tags : [el("li", { className: "muted" }, "no tags yet")]));
}

function trackItem(track, extra) {
  const who = [track.artist, track.album].filter(Boolean).join(" — ");
  return el("li", {}, el("a", { href: `/track.html?id=${track.track_id}` }, track.title || "(untitled)"), who ? ` · ${who}` : "", extra ? el("span", { className: "muted" }, ` · ${extra}`) : "");
}

function showCorrection(a) {
  const form = document.getElementById("correct");
  form.bpm.value = a.bpm === null ? "" : String(Math.round(a.bpm * 100) / 100);
  form.key.value = a.key || "";
  const alternative = document.getElementById("use-alternative");
  alternative.hidden = !a.bpm_alternative;
  if (a.bpm_alternative) alternative.textContent = `Use ${fmt(a.bpm_alternative)} BPM`;
  const tag = document.getElementById("use-tag");
  tag.hidden = !a.host_bpm || (a.bpm !== null && Math.abs(a.bpm - a.host_bpm) <= 0.01 * a.host_bpm);
  if (!tag.hidden) tag.textContent = `Use the file's tag: ${fmt(a.host_bpm)} BPM`;
  document.getElementById("restore").hidden = a.overridden.length === 0;
}

async function correct(method, body, done) {
  const status = document.getElementById("correct-status");
  try {
    analysis = await api(`/api/tracks/${trackId}/overrides`, { method, body });
  } catch (error) {
    say(status, error.message, "error");
    return;
  }
  showAnalysis(analysis);
  showCorrection(analysis);
  say(status, done, "ok");
  await loadSimilar();
}

function saveCorrection(event) {
  event.preventDefault();
  const form = event.target;
  const body = {};
  const bpm = Number(form.bpm.value);
  if (form.bpm.value.trim() && bpm !== Math.round((analysis.bpm || 0) * 100) / 100) body.bpm = bpm;
  if (form.key.value.trim() && form.key.value.trim() !== analysis.key) body.key = form.key.value.trim();
  if (Object.keys(body).length === 0) {
    say(document.getElementById("correct-status"), "Nothing changed.");
    return;
  }
  return correct("PATCH", body, "Saved: playlists and filters use your values now; new analyses keep them.");
}

async function loadSimilar() {
  const status = document.getElementById("similar-status");
  try {
    const result = await api(`/api/tracks/${trackId}/similar?limit=10`);
    const items = result.tracks.map((t) => trackItem(t, `${fmt(t.bpm)} BPM · ${t.camelot || "–"} · distance ${fmt(t.distance, 3)}`));
    document.getElementById("similar").replaceChildren(...items);
    say(status, items.length ? `Nearest tracks by the ${result.model} embedding.` : "No neighbour yet.");
  } catch (error) {
    say(status, error.status === 404 ? "No embedding for this track yet: analysis is still running." : error.message, error.status === 404 ? "" : "error");
  }
}

function playlistBody(kind, form) {
  const limit = Number(form.limit.value) || 20;
  const common = { limit, write_to_host: true };
  if (form.name.value.trim()) common.name = form.name.value.trim();
  if (kind === "harmonic-mix") {
    return form.sure_keys.checked ? { ...common, seed_track_id: trackId, min_key_confidence: SURE_KEY_CONFIDENCE } : { ...common, seed_track_id: trackId };
  }
  // the tag filters (GET /api/tags): Sonic Match and BPM range take them, the harmonic mix does not
  if (form.mood.value) common.moods = [form.mood.value];
  if (form.exclude_style.value) common.exclude_styles = [form.exclude_style.value];
  if (kind === "sonic-match") return { ...common, seed_track_ids: [trackId] };
  const window = (Number(form.window.value) || 5) / 100;
  return { ...common, bpm_min: Math.round(analysis.bpm * (1 - window) * 10) / 10, bpm_max: Math.round(analysis.bpm * (1 + window) * 10) / 10, half_double: true };
}

async function loadTagChoices() {
  const { categories } = await api("/api/tags");
  const options = (tags) => tags.map((tag) => el("option", { value: tag }, tag));
  document.getElementById("playlist-mood").append(...options(categories.mood));
  document.getElementById("playlist-exclude-style").append(...options(categories.genre));
}

async function makePlaylist(kind) {
  const status = document.getElementById("playlist-status");
  const form = document.getElementById("playlist");
  if (kind !== "sonic-match" && !analysis.bpm) {
    say(status, "This track has no BPM yet.", "error");
    return;
  }
  if (form.getAttribute("aria-busy") === "true") return;
  // busy, not disabled: a disabled button loses the keyboard focus, and the user would start again from the top
  const buttons = form.querySelectorAll("button");
  form.setAttribute("aria-busy", "true");
  buttons.forEach((b) => b.setAttribute("aria-disabled", "true"));
  say(status, "Building the playlist…");
  try {
    const playlist = await api(`/api/playlists/${kind}`, { method: "POST", body: playlistBody(kind, form) });
    const where = playlist.host_playlist_id ? `written to the server (playlist id ${playlist.host_playlist_id})` : "not written: no media server is configured, or it is empty";
    say(status, `“${playlist.name}”: ${playlist.tracks.length} tracks, ${where}.`, "ok");
    document.getElementById("playlist-tracks").replaceChildren(...playlist.tracks.map((t) => trackItem(t, t.reason)));
  } catch (error) {
    say(status, error.message, "error");
  } finally {
    form.removeAttribute("aria-busy");
    buttons.forEach((b) => b.removeAttribute("aria-disabled"));
  }
}

function showStems(state) {
  const status = document.getElementById("stems-status");
  const labels = { none: "No stems yet.", queued: "Stems are queued.", running: "Stems are being separated…", ready: "Stems are ready.", failed: `Separation failed: ${state.error || "see the worker log"}` };
  say(status, labels[state.state] || state.state, state.state === "failed" ? "error" : state.state === "ready" ? "ok" : "");
  // inactive, not disabled: a disabled button loses the keyboard focus
  const inactive = ["queued", "running", "ready"].includes(state.state);
  document.getElementById("request-stems").setAttribute("aria-disabled", String(inactive));
}

async function requestStems() {
  if (document.getElementById("request-stems").getAttribute("aria-disabled") === "true") return;
  try {
    showStems(await api(`/api/tracks/${trackId}/stems`, { method: "POST", body: { purpose: "studio" } }));
  } catch (error) {
    say(document.getElementById("stems-status"), error.message, "error");
  }
}

async function loadWaveform() {
  const caption = document.getElementById("waveform-text");
  if (analysis.analyzer_versions.waveform === undefined) {
    caption.textContent = "No waveform yet: the waveform analyzer has not run on this track.";
    return;
  }
  try {
    showWaveform(document.getElementById("waveform"), caption, await api(`/api/tracks/${trackId}/waveform`));
  } catch (error) {
    caption.textContent = `No waveform: ${error.message}`;
  }
}

async function main() {
  const session = await requireSession();
  if (!session) return;
  setUpHeader(session);
  const status = document.getElementById("track-status");
  if (!Number.isInteger(trackId) || trackId < 1) {
    say(status, "No track id in the address (track.html?id=…).", "error");
    return;
  }
  document.getElementById("studio-link").href = `/studio/?track=${trackId}`;
  try {
    analysis = await api(`/api/tracks/${trackId}/analysis`);
  } catch (error) {
    say(status, error.message, "error");
    return;
  }
  const listed = await api(`/api/tracks?track_id=${trackId}&limit=1`);
  const track = listed.tracks[0] || { title: `Track ${trackId}` };
  document.getElementById("title").textContent = track.title || "(untitled)";
  document.getElementById("byline").textContent = [track.artist, track.album].filter(Boolean).join(" — ");
  document.title = `${track.title || "Track"} · Sonántica`;
  showAnalysis(analysis);
  showCorrection(analysis);
  document.getElementById("correct").addEventListener("submit", saveCorrection);
  document.getElementById("use-alternative").addEventListener("click", () => correct("PATCH", { bpm: analysis.bpm_alternative }, "Saved: the other tempo is yours now."));
  document.getElementById("use-tag").addEventListener("click", () => correct("PATCH", { bpm: analysis.host_bpm }, "Saved: the file's BPM tag is yours now."));
  document.getElementById("restore").addEventListener("click", () => correct("DELETE", undefined, "The analyzer's values are back."));
  document.querySelectorAll("#playlist button[data-kind]").forEach((button) => button.addEventListener("click", () => makePlaylist(button.dataset.kind)));
  document.getElementById("request-stems").addEventListener("click", requestStems);
  await Promise.all([loadWaveform(), loadSimilar(), loadTagChoices().catch((error) => say(document.getElementById("playlist-status"), `No mood or style choices: ${error.message}`, "error")), api(`/api/tracks/${trackId}/stems`).then(showStems).catch((error) => say(document.getElementById("stems-status"), error.message, "error"))]);
}

main();
