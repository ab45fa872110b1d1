// The track page's waveform overview: the `waveform` analyzer's stored min/max peaks (GET /api/tracks/{id}/waveform)
// drawn on a canvas, one bar per device pixel column (redrawn when the canvas changes size), and a text
// alternative: the peak level and where the track is silent.

const SILENT_RUN_S = 0.5; // shortest silent stretch worth naming
const MAX_SILENT_RUNS = 3;

/** Time in a track: tenths of a second for tracks under a minute, m:ss otherwise. */
function clock(seconds, durationS) {
  if (durationS < 60) return `${seconds.toFixed(1)} s`;
  const s = Math.round(seconds);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

/** Stretches (start, end in seconds) where every sample is exactly zero, at least SILENT_RUN_S long. */
export function silentRuns(waveform) {
  const runs = [];
  let start = null;
  for (let i = 0; i <= waveform.points; i++) {
    const silent = i < waveform.points && waveform.minimum[i] === 0 && waveform.maximum[i] === 0;
    if (silent && start === null) start = i;
    if (!silent && start !== null) {
      if ((i - start) * waveform.bucket_s >= SILENT_RUN_S) runs.push([start * waveform.bucket_s, i * waveform.bucket_s]);
      start = null;
    }
  }
  return runs;
}

/** One sentence for people who cannot see the picture. */
export function describeWaveform(waveform) {
  const durationS = waveform.points * waveform.bucket_s;
  let peak = 0;
  let peakAt = 0;
  for (let i = 0; i < waveform.points; i++) {
    const level = Math.max(-waveform.minimum[i], waveform.maximum[i]);
    if (level > peak) [peak, peakAt] = [level, i];
  }
  if (peak === 0) return `Waveform: silent throughout (${clock(durationS, durationS)}).`;
  const peakDbfs = 20 * Math.log10(peak);
  const parts = [`Waveform of ${clock(durationS, durationS)}: sample peak ${peakDbfs.toFixed(1)} dBFS at ${clock(peakAt * waveform.bucket_s, durationS)}`];
  const runs = silentRuns(waveform);
  if (runs.length) {
    const named = runs.slice(0, MAX_SILENT_RUNS).map(([from, to]) => `from ${clock(from, durationS)} to ${clock(to, durationS)}`);
    const more = runs.length > MAX_SILENT_RUNS ? ` and ${runs.length - MAX_SILENT_RUNS} more stretches` : "";
    parts.push(`silent ${named.join(", ")}${more}`);
  } else {
    parts.push("no silent stretch");
  }
  return `${parts.join("; ")}.`;
}

/** Draw `waveform` on `canvas` at its displayed size: per pixel column the lowest minimum to the highest maximum
 * of the points under it; columns whose points are all zero stay empty (transparent). */
export function drawWaveform(canvas, waveform) {
  const scale = window.devicePixelRatio || 1;
  const width = Math.max(1, Math.round(canvas.clientWidth * scale));
  const height = Math.max(1, Math.round(canvas.clientHeight * scale));
  canvas.width = width;
  canvas.height = height;
  const g = canvas.getContext("2d");
  g.clearRect(0, 0, width, height);
  g.fillStyle = getComputedStyle(canvas).color;
  const mid = height / 2;
  const perColumn = waveform.points / width;
  for (let x = 0; x < width; x++) {
    const from = Math.floor(x * perColumn);
    const to = Math.min(waveform.points, Math.max(from + 1, Math.floor((x + 1) * perColumn)));
    let low = 0;
    let high = 0;
    for (let i = from; i < to; i++) {
      low = Math.min(low, waveform.minimum[i]);
      high = Math.max(high, waveform.maximum[i]);
    }
    if (high > low) g.fillRect(x, mid - high * mid, 1, Math.max(1, (high - low) * mid));
  }
}

/** Show the waveform in `canvas` with its text in `caption`, kept sharp when the canvas is resized. */
export function showWaveform(canvas, caption, waveform) {
  caption.textContent = describeWaveform(waveform);
  canvas.hidden = false;
  drawWaveform(canvas, waveform);
  canvas.dataset.points = String(waveform.points);
  new ResizeObserver(() => drawWaveform(canvas, waveform)).observe(canvas);
}
