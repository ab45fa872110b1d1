// The Studio: plays a track (or its four stems, sample-locked) through one Web Audio graph whose AudioWorklet
// measures what is heard (meter-worklet.js, DSP in dsp.js). `window.studio` holds the state and the latest
// readings, for people poking around in the console and for the browser tests.
import { SILENCE_DB } from "./dsp.js";

const TOKEN_KEY = "sonantica.token";
const STEMS = ["vocals", "drums", "bass", "other"];
const WORKLET_URL = new URL("meter-worklet.js", import.meta.url);
const WORKLET_NAME = "sonantica-meters";
const METER_OPTIONS = { numberOfInputs: 1, numberOfOutputs: 1, outputChannelCount: [2], channelCount: 2,
  channelCountMode: "explicit", channelInterpretation: "speakers" };

const $ = (id) => document.getElementById(id);

const studio = {
  ready: false,
  error: null,
  trackId: null,
  analysis: null,
  stems: { state: "none", loaded: false },
  source: "original",
  playing: false,
  positionS: 0,
  durationS: 0,
  readings: null,
  trackDr: null,
  measureMs: null, // how long the last whole-track measurement took
  frames: 0, // frames drawn
  readyAtMs: null, // navigation start to ready
  waveform: null, // {points, bucketS} once the stored overview is drawn
  beats: 0,
  karaoke: false,
  mixer: Object.fromEntries(STEMS.map((name) => [name, { gainDb: 0, mute: false, solo: false }])),
  sampleRate: null,
  /** Seconds into the track now. */
  position() {
    return currentPosition();
  },
  /** The analyser's level (dB) at the frequency bin of `hz` on the mix bus. */
  bandDb(hz) {
    const bins = new Float32Array(graph.analyser.frequencyBinCount);
    graph.analyser.getFloatFrequencyData(bins);
    const index = Math.round((hz / graph.ctx.sampleRate) * graph.analyser.fftSize);
    return Math.max(bins[index - 1], bins[index], bins[index + 1]);
  },
};
window.studio = studio;

const graph = { ctx: null, meter: null, analyser: null, bus: null, original: null, stemGains: {}, buffers: {},
  sources: [], startedAt: 0 };

function authHeaders(extra = {}) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  return token ? { ...extra, Authorization: `Bearer ${token}` } : extra;
}

async function request(path, options = {}) {
  const response = await fetch(path, { credentials: "same-origin", ...options, headers: authHeaders(options.headers) });
  if (response.status === 401) {
    throw new Error("Not signed in: sign in on the start page (/) first.");
  }
  if (!response.ok) {
    let detail = `${response.status} ${response.statusText}`;
    try {
      detail = (await response.json()).detail || detail;
    } catch {
      // not JSON: keep the status line
    }
    throw new Error(`${path}: ${detail}`);
  }
  return response;
}

const getJson = async (path) => (await request(path)).json();

async function decode(path) {
  const data = await (await request(path)).arrayBuffer();
  return graph.ctx.decodeAudioData(data);
}

function showError(message) {
  studio.error = message;
  $("error").textContent = message;
  $("error").hidden = false;
}

const fmtDb = (v, unit) => (v === null || v === undefined || v <= SILENCE_DB ? "–" : `${v.toFixed(1)} ${unit}`);
const fmtTime = (s) => `${Math.floor(s / 60)}:${String(Math.floor(s % 60)).padStart(2, "0")}`;
const dbToGain = (db) => 10 ** (db / 20);

function describe(analysis) {
  const parts = [];
  if (analysis.bpm) parts.push(`${analysis.bpm.toFixed(1)} BPM`);
  if (analysis.key) parts.push(`${analysis.key}${analysis.camelot ? ` (${analysis.camelot})` : ""}`);
  if (analysis.loudness_lufs !== null) parts.push(`${analysis.loudness_lufs.toFixed(1)} LUFS`);
  return parts.join(" · ") || "not analysed yet";
}

async function buildGraph() {
  graph.ctx = new AudioContext({ latencyHint: "interactive" });
  studio.sampleRate = graph.ctx.sampleRate;
  await graph.ctx.audioWorklet.addModule(WORKLET_URL);
  graph.meter = new AudioWorkletNode(graph.ctx, WORKLET_NAME,
    { ...METER_OPTIONS, processorOptions: { dynamics: false } });
  graph.meter.port.onmessage = (event) => {
    studio.readings = event.data;
    goniometer.feed(event.data.points);
  };
  graph.bus = graph.ctx.createGain();
  graph.analyser = graph.ctx.createAnalyser();
  graph.analyser.fftSize = 8192;
  graph.analyser.smoothingTimeConstant = 0.5;
  graph.bus.connect(graph.meter).connect(graph.ctx.destination);
  graph.meter.connect(graph.analyser);
  graph.original = graph.ctx.createGain();
  graph.original.connect(graph.bus);
  for (const name of STEMS) {
    graph.stemGains[name] = graph.ctx.createGain();
    graph.stemGains[name].connect(graph.bus);
  }
}

function stopSources() {
  for (const source of graph.sources) {
    source.onended = null;
    source.stop();
  }
  graph.sources = [];
}

/** Start the current source at `offsetS`: the original, or the four stems from one context time. */
function startSources(offsetS) {
  stopSources();
  const when = graph.ctx.currentTime + 0.05;
  const targets = studio.source === "stems" ? STEMS.map((n) => [graph.buffers[n], graph.stemGains[n]])
    : [[graph.buffers.original, graph.original]];
  for (const [buffer, destination] of targets) {
    const source = graph.ctx.createBufferSource();
    source.buffer = buffer;
    source.connect(destination);
    source.start(when, offsetS);
    graph.sources.push(source);
  }
  graph.sources[0].onended = () => {
    studio.playing = false;
    studio.positionS = 0;
    graph.sources = [];
    graph.meter.port.postMessage({ dynamics: false });
    $("position").value = "0";
    $("play").textContent = "Play";
  };
  graph.startedAt = when - offsetS;
}

async function play() {
  await graph.ctx.resume();
  startSources(studio.positionS);
  graph.meter.port.postMessage({ dynamics: true });
  studio.playing = true;
  $("play").textContent = "Pause";
}

function pause() {
  studio.positionS = currentPosition();
  stopSources();
  graph.meter.port.postMessage({ dynamics: false });
  studio.playing = false;
  $("play").textContent = "Play";
}

function currentPosition() {
  if (!studio.playing) return studio.positionS;
  return Math.min(studio.durationS, Math.max(0, graph.ctx.currentTime - graph.startedAt));
}

function seek(positionS) {
  studio.positionS = positionS;
  graph.meter.port.postMessage({ reset: true });
  if (studio.playing) startSources(positionS);
}

function applyMix() {
  const soloed = STEMS.some((n) => studio.mixer[n].solo);
  const stems = studio.source === "stems";
  graph.original.gain.value = stems ? 0 : 1;
  for (const name of STEMS) {
    const strip = studio.mixer[name];
    const audible = stems && !strip.mute && (!soloed || strip.solo);
    graph.stemGains[name].gain.value = audible ? dbToGain(strip.gainDb) : 0;
    $(`mute-${name}`)?.setAttribute("aria-pressed", String(strip.mute));
    $(`solo-${name}`)?.setAttribute("aria-pressed", String(strip.solo));
  }
  studio.karaoke = studio.mixer.vocals.mute;
  $("karaoke").setAttribute("aria-pressed", String(studio.karaoke));
}

function buildStrips() {
  const strips = $("strips");
  for (const name of STEMS) {
    const strip = document.createElement("div");
    strip.className = "strip";
    strip.innerHTML = `<h3>${name}</h3>
      <label>Gain <input id="gain-${name}" type="range" min="-30" max="6" step="0.5" value="0"></label>
      <output id="gain-${name}-text">0.0 dB</output>
      <button id="mute-${name}" type="button" aria-pressed="false">Mute</button>
      <button id="solo-${name}" type="button" aria-pressed="false">Solo</button>`;
    strips.append(strip);
    $(`gain-${name}`).addEventListener("input", (event) => {
      studio.mixer[name].gainDb = Number(event.target.value);
      $(`gain-${name}-text`).textContent = `${studio.mixer[name].gainDb.toFixed(1)} dB`;
      applyMix();
    });
    $(`mute-${name}`).addEventListener("click", () => {
      studio.mixer[name].mute = !studio.mixer[name].mute;
      applyMix();
    });
    $(`solo-${name}`).addEventListener("click", () => {
      studio.mixer[name].solo = !studio.mixer[name].solo;
      applyMix();
    });
  }
}

async function loadStems(status) {
  studio.stems.state = status.state;
  $("mixer").hidden = false;
  if (status.state !== "ready") {
    const words = { none: "No stems yet.", queued: "Stems queued…", running: "Separating stems…",
      failed: `Separation failed: ${status.error || "unknown reason"}` };
    $("stems-state").textContent = words[status.state] || status.state;
    return;
  }
  $("stems-state").textContent = "Decoding the four stems…";
  const urls = Object.fromEntries(status.files.map((f) => [f.name, f.url]));
  const decoded = await Promise.all(STEMS.map((name) => decode(urls[name])));
  STEMS.forEach((name, i) => {
    graph.buffers[name] = decoded[i];
  });
  buildStrips();
  studio.stems.loaded = true;
  $("stems-state").textContent = `${status.model || "stems"} · ${status.format}`;
  $("source").hidden = false;
  $("karaoke").disabled = false;
}

async function requestStems() {
  await request(`/api/tracks/${studio.trackId}/stems`, { method: "POST",
    headers: { "Content-Type": "application/json" }, body: JSON.stringify({ purpose: "studio" }) });
  const poll = async () => {
    const status = await getJson(`/api/tracks/${studio.trackId}/stems`);
    if (status.state === "ready") await loadStems(status);
    else if (status.state !== "failed") setTimeout(poll, 5000);
    else await loadStems(status);
  };
  await poll();
}

/** The whole track's DR, measured offline by the same worklet (much faster than playing it). */
async function measureTrackDr() {
  const started = performance.now();
  const buffer = graph.buffers.original;
  const offline = new OfflineAudioContext(2, buffer.length, buffer.sampleRate);
  await offline.audioWorklet.addModule(WORKLET_URL);
  const node = new AudioWorkletNode(offline, WORKLET_NAME, { ...METER_OPTIONS,
    processorOptions: { endFrame: buffer.length, reportS: 3600, dynamics: true } });
  const final = new Promise((resolve) => {
    node.port.onmessage = (event) => event.data.final && resolve(event.data);
  });
  const source = offline.createBufferSource();
  source.buffer = buffer;
  source.connect(node).connect(offline.destination);
  source.start();
  await offline.startRendering();
  const readings = await final;
  studio.measureMs = performance.now() - started;
  studio.trackDr = readings.dr;
  $("track-dr").textContent = formatDr(readings.dr);
  return readings.dr;
}

function formatDr(dr) {
  if (dr.value === null) return "–";
  const [l, r] = dr.channels;
  return `DR${Math.round(dr.value)} (${dr.value.toFixed(1)}; L ${l.toFixed(1)} / R ${r.toFixed(1)})`;
}

const goniometer = {
  canvas: null,
  pending: [],
  zoom: 1,
  feed(points) {
    this.pending.push(points);
  },
  drawAxes(g, size) {
    const c = size / 2;
    g.strokeStyle = "rgb(60, 70, 80)";
    g.lineWidth = 1;
    g.beginPath();
    g.moveTo(c, 0);
    g.lineTo(c, size);
    g.moveTo(0, c);
    g.lineTo(size, c);
    g.moveTo(0, 0);
    g.lineTo(size, size);
    g.moveTo(size, 0);
    g.lineTo(0, size);
    g.stroke();
    g.fillStyle = "rgb(140, 150, 160)";
    g.font = "12px sans-serif";
    g.fillText("M", c + 4, 14);
    g.fillText("L", 6, 16);
    g.fillText("R", size - 14, 16);
    g.fillText("S", size - 12, c - 4);
  },
  /** Mid up, side across: x = (R - L) / 2, y = (L + R) / 2 of the radius, so a left-only signal lies on the
   * upper-left/lower-right diagonal (the L axis), mono on the vertical. Gain follows the recent peak; each new
   * batch of points fades the older ones. */
  draw() {
    if (this.pending.length === 0) return; // the picture stays until new points arrive (fading is per batch)
    const g = this.canvas.getContext("2d");
    const size = this.canvas.width;
    const c = size / 2;
    g.fillStyle = "rgba(16, 20, 24, 0.35)";
    g.fillRect(0, 0, size, size);
    this.drawAxes(g, size);
    let peak = 0;
    for (const points of this.pending) for (const v of points) peak = Math.max(peak, Math.abs(v));
    if (peak > 0) this.zoom += (Math.min(20, 0.9 / peak) - this.zoom) * 0.2;
    g.fillStyle = "rgb(80, 255, 140)";
    for (const points of this.pending) {
      for (let i = 0; i < points.length; i += 2) {
        const l = points[i] * this.zoom;
        const r = points[i + 1] * this.zoom;
        g.fillRect(c + ((r - l) / 2) * c - 1, c - ((l + r) / 2) * c - 1, 2, 2);
      }
    }
    this.pending = [];
  },
};

/** The stored waveform (min/max per bucket) drawn once, then copied with a playhead every frame. */
const overview = {
  image: null,
  async load(trackId) {
    const waveform = await getJson(`/api/tracks/${trackId}/waveform`);
    studio.waveform = { points: waveform.points, bucketS: waveform.bucket_s };
    const canvas = $("overview");
    canvas.hidden = false;
    const g = canvas.getContext("2d");
    const { width, height } = canvas;
    const mid = height / 2;
    g.fillStyle = "rgb(16, 20, 24)";
    g.fillRect(0, 0, width, height);
    g.fillStyle = "rgb(70, 160, 110)";
    const perPixel = waveform.points / width;
    for (let x = 0; x < width; x++) {
      const from = Math.floor(x * perPixel);
      const to = Math.max(from + 1, Math.floor((x + 1) * perPixel));
      let low = 0;
      let high = 0;
      for (let i = from; i < Math.min(to, waveform.points); i++) {
        low = Math.min(low, waveform.minimum[i]);
        high = Math.max(high, waveform.maximum[i]);
      }
      g.fillRect(x, mid - high * mid, 1, Math.max(1, (high - low) * mid));
    }
    this.image = g.getImageData(0, 0, width, height);
    canvas.addEventListener("click", (event) => {
      const box = canvas.getBoundingClientRect();
      const positionS = ((event.clientX - box.left) / box.width) * studio.durationS;
      $("position").value = String(positionS);
      seek(positionS);
    });
  },
  draw(positionS) {
    if (!this.image || !studio.durationS) return;
    const g = $("overview").getContext("2d");
    g.putImageData(this.image, 0, 0);
    const x = (positionS / studio.durationS) * this.image.width;
    g.fillStyle = "rgb(230, 233, 236)";
    g.fillRect(x - 1, 0, 2, this.image.height);
  },
};

function setBar(id, value, min, max) {
  const fraction = Math.max(0, Math.min(1, (value - min) / (max - min)));
  $(id).style.width = `${(fraction * 100).toFixed(1)}%`;
}

let lastBeat = -1;

function render() {
  studio.frames += 1;
  const position = currentPosition();
  $("clock").textContent = `${fmtTime(position)} / ${fmtTime(studio.durationS)}`;
  if (studio.playing) $("position").value = String(position);
  const bpm = studio.analysis?.bpm;
  if (bpm && studio.playing) {
    // beats at beat_offset_s + k * 60 / bpm (the stored grid); a track analysed before the grid was stored
    // pulses from 0 s
    const beat = Math.floor(((position - (studio.analysis.beat_offset_s ?? 0)) * bpm) / 60);
    if (beat >= 0 && beat !== lastBeat) {
      lastBeat = beat;
      studio.beats += 1;
      $("pulse").classList.remove("on");
      void $("pulse").offsetWidth; // restart the CSS animation
      $("pulse").classList.add("on");
    }
  }
  const r = studio.readings;
  if (r) {
    ["l", "r"].forEach((side, i) => {
      setBar(`vu-${side}`, r.vu[i], -20, 3);
      $(`peak-${side}`).style.left = `${Math.max(0, Math.min(100, ((r.peakDbfs[i] + 60) / 60) * 100))}%`;
      $(`vu-${side}-text`).textContent = r.vu[i] <= SILENCE_DB + 20 ? "– VU" : `${r.vu[i].toFixed(1)} VU`;
      $(`peak-${side}-text`).textContent = fmtDb(r.peakDbfs[i], "dBFS");
    });
    $("correlation").textContent = r.correlation.toFixed(2);
    $("correlation-bar").style.left = `${((r.correlation + 1) / 2) * 100}%`;
    const integrated = studio.analysis?.loudness_lufs ?? null;
    const versus = (v) => (v === null || integrated === null || v <= SILENCE_DB ? ""
      : ` (${v - integrated >= 0 ? "+" : ""}${(v - integrated).toFixed(1)} LU)`);
    $("momentary").textContent = fmtDb(r.momentaryLufs, "LUFS") + versus(r.momentaryLufs);
    $("short-term").textContent = fmtDb(r.shortTermLufs, "LUFS") + versus(r.shortTermLufs);
    $("dr").textContent = r.dr.value === null ? "–" : r.dr.channels.map((v) => v.toFixed(1)).join(" / ");
  }
  goniometer.draw();
  overview.draw(position);
  requestAnimationFrame(render);
}

function wireControls() {
  $("play").addEventListener("click", () => (studio.playing ? pause() : play()));
  $("position").addEventListener("change", (event) => seek(Number(event.target.value)));
  $("measure-dr").addEventListener("click", () => measureTrackDr().catch((e) => showError(e.message)));
  $("karaoke").addEventListener("click", () => {
    studio.mixer.vocals.mute = !studio.mixer.vocals.mute;
    applyMix();
  });
  for (const radio of document.querySelectorAll("input[name=source]")) {
    radio.addEventListener("change", (event) => {
      studio.source = event.target.value;
      applyMix();
      if (studio.playing) startSources(currentPosition());
    });
  }
}

async function main() {
  goniometer.canvas = $("goniometer");
  goniometer.drawAxes(goniometer.canvas.getContext("2d"), goniometer.canvas.width);
  const id = Number(new URLSearchParams(location.search).get("track"));
  if (!Number.isInteger(id) || id < 1) {
    $("title").textContent = "No track";
    showError("Open the Studio from a track page: /studio/?track=<track id>.");
    return;
  }
  studio.trackId = id;
  const [analysis, stems] = await Promise.all([
    getJson(`/api/tracks/${id}/analysis`),
    getJson(`/api/tracks/${id}/stems`),
  ]);
  studio.analysis = analysis;
  $("title").textContent = `Track ${id} · ${analysis.host} ${analysis.host_track_id}`;
  $("facts").textContent = describe(analysis);
  $("integrated").textContent = fmtDb(analysis.loudness_lufs, "LUFS");
  await buildGraph();
  wireControls();
  graph.buffers.original = await decode(`/api/tracks/${id}/audio`);
  studio.durationS = graph.buffers.original.duration;
  $("position").max = String(studio.durationS);
  $("position").disabled = false;
  $("play").disabled = false;
  $("measure-dr").disabled = false;
  if (stems.state === "none") {
    $("mixer").hidden = false;
    $("stems-state").innerHTML = 'No stems yet. <button id="request-stems" type="button">Separate stems</button>';
    $("request-stems").addEventListener("click", () => requestStems().catch((e) => showError(e.message)));
  } else {
    await loadStems(stems);
  }
  if (analysis.analyzer_versions.waveform !== undefined) await overview.load(id);
  applyMix();
  studio.readyAtMs = performance.now();
  studio.ready = true;
  requestAnimationFrame(render);
}

main().catch((error) => showError(error.message));
