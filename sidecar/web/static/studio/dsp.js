// Pure DSP of the Studio's meters: no DOM, no Web Audio objects, so the AudioWorklet and the tests load the same
// code. Levels are in dBFS where a full-scale sine reads 0 dBFS (AES17); times in seconds; samples are floats
// with full scale 1.0.

export const SILENCE_DB = -120;
export const VU_REFERENCE_DBFS = -18; // 0 VU = a -18 dBFS sine (EBU R68 alignment)
export const VU_INTEGRATION_S = 0.3; // a steady sine reaches 99 % of its reading in 300 ms (IEC 60268-17)
export const VU_OVERSHOOT = 0.015; // and overshoots it by 1.5 %
export const PEAK_FALL_DB_PER_S = 20 / 1.7; // peak meter return: 20 dB in 1.7 s (IEC 60268-18)
export const CORRELATION_TIME_CONSTANT_S = 0.3;
export const DR_BLOCK_S = 3;
export const DR_LOUDEST_FRACTION = 0.2;
export const LOUDNESS_BLOCK_S = 0.1; // momentary and short-term loudness advance in 100 ms steps
export const MOMENTARY_BLOCKS = 4; // 400 ms
export const SHORT_TERM_BLOCKS = 30; // 3 s

/** 20 log10(x), floored at SILENCE_DB. */
export function toDb(x) {
  return x > 0 ? Math.max(SILENCE_DB, 20 * Math.log10(x)) : SILENCE_DB;
}

/** Damping ratio of a second-order pointer with the given step overshoot. */
function dampingFor(overshoot) {
  const l = Math.log(overshoot);
  return -l / Math.sqrt(Math.PI * Math.PI + l * l);
}

/** Natural frequency (rad/s) that lets a pointer of damping `zeta` first reach 99 % of a step at `riseS`. */
function naturalFrequencyFor(zeta, riseS) {
  const wd = Math.sqrt(1 - zeta * zeta);
  const phi = Math.acos(zeta);
  // step response for omega_n = 1; its 99 % time scales as 1 / omega_n
  const response = (t) => 1 - (Math.exp(-zeta * t) / wd) * Math.sin(wd * t + phi);
  let t = 0;
  while (response(t) < 0.99) t += 1e-4;
  return t / riseS;
}

/**
 * VU meter: the full-wave rectified signal drives a second-order pointer (300 ms to 99 %, 1.5 % overshoot),
 * scaled so a steady sine reads its level; `readingVu()` is relative to VU_REFERENCE_DBFS.
 */
export class VuMeter {
  constructor(sampleRate) {
    this.dt = 1 / sampleRate;
    this.zeta = dampingFor(VU_OVERSHOOT);
    this.omega = naturalFrequencyFor(this.zeta, VU_INTEGRATION_S);
    this.reset();
  }

  reset() {
    this.position = 0;
    this.velocity = 0;
  }

  process(samples, count) {
    const w2 = this.omega * this.omega;
    const damping = 2 * this.zeta * this.omega;
    const dt = this.dt;
    let y = this.position;
    let v = this.velocity;
    for (let i = 0; i < count; i++) {
      v += dt * (w2 * (Math.abs(samples[i]) - y) - damping * v);
      y += dt * v;
    }
    this.position = y;
    this.velocity = v;
  }

  /** The level a steady sine of this rectified mean has, in dBFS (mean of |sin| is 2/pi of its amplitude). */
  levelDbfs() {
    return toDb((this.position * Math.PI) / 2);
  }

  readingVu() {
    return this.levelDbfs() - VU_REFERENCE_DBFS;
  }
}

/** Sample-peak meter: instant rise, falls back at PEAK_FALL_DB_PER_S; also keeps the highest peak seen. */
export class PeakMeter {
  constructor(sampleRate) {
    this.sampleRate = sampleRate;
    this.reset();
  }

  reset() {
    this.displayDb = SILENCE_DB;
    this.maxDb = SILENCE_DB;
  }

  process(samples, count) {
    let peak = 0;
    for (let i = 0; i < count; i++) {
      const a = Math.abs(samples[i]);
      if (a > peak) peak = a;
    }
    const peakDb = toDb(peak);
    const fallen = this.displayDb - (PEAK_FALL_DB_PER_S * count) / this.sampleRate;
    this.displayDb = Math.max(peakDb, fallen, SILENCE_DB);
    this.maxDb = Math.max(this.maxDb, peakDb);
  }
}

/**
 * Phase correlation: sum(LR) / sqrt(sum(L^2) sum(R^2)) over exponentially weighted 300 ms; +1 mono in phase,
 * -1 in anti-phase, 0 for uncorrelated signals and when one side is silent.
 */
export class CorrelationMeter {
  constructor(sampleRate) {
    this.alpha = 1 - Math.exp(-1 / (CORRELATION_TIME_CONSTANT_S * sampleRate));
    this.reset();
  }

  reset() {
    this.lr = 0;
    this.ll = 0;
    this.rr = 0;
  }

  process(left, right, count) {
    const a = this.alpha;
    let { lr, ll, rr } = this;
    for (let i = 0; i < count; i++) {
      const l = left[i];
      const r = right[i];
      lr += a * (l * r - lr);
      ll += a * (l * l - ll);
      rr += a * (r * r - rr);
    }
    this.lr = lr;
    this.ll = ll;
    this.rr = rr;
  }

  value() {
    const energy = Math.sqrt(this.ll * this.rr);
    return energy > 1e-12 ? Math.max(-1, Math.min(1, this.lr / energy)) : 0;
  }
}

/** A biquad in direct form I with its own state. */
class Biquad {
  constructor(b, a) {
    this.b = b;
    this.a = a;
    this.x1 = 0;
    this.x2 = 0;
    this.y1 = 0;
    this.y2 = 0;
  }

  step(x) {
    const [b0, b1, b2] = this.b;
    const [, a1, a2] = this.a;
    const y = b0 * x + b1 * this.x1 + b2 * this.x2 - a1 * this.y1 - a2 * this.y2;
    this.x2 = this.x1;
    this.x1 = x;
    this.y2 = this.y1;
    this.y1 = y;
    return y;
  }
}

/** The two K-weighting stages of ITU-R BS.1770 (high shelf, then high pass) at any rate, as libebur128 builds them. */
export function kWeightingCoefficients(sampleRate) {
  let f0 = 1681.974450955533;
  const gainDb = 3.999843853973347;
  let q = 0.7071752369554196;
  let k = Math.tan((Math.PI * f0) / sampleRate);
  const vh = 10 ** (gainDb / 20);
  const vb = vh ** 0.4996667741545416;
  let a0 = 1 + k / q + k * k;
  const shelf = {
    b: [(vh + (vb * k) / q + k * k) / a0, (2 * (k * k - vh)) / a0, (vh - (vb * k) / q + k * k) / a0],
    a: [1, (2 * (k * k - 1)) / a0, (1 - k / q + k * k) / a0],
  };
  f0 = 38.13547087602444;
  q = 0.5003270373238773;
  k = Math.tan((Math.PI * f0) / sampleRate);
  a0 = 1 + k / q + k * k;
  const highPass = { b: [1, -2, 1], a: [1, (2 * (k * k - 1)) / a0, (1 - k / q + k * k) / a0] };
  return [shelf, highPass];
}

/**
 * Momentary (400 ms) and short-term (3 s) loudness in LUFS (BS.1770, ungated, channel weights 1 for L and R),
 * updated every 100 ms from the K-weighted mean squares of 100 ms blocks. `null` until a window has filled.
 */
export class LoudnessMeter {
  constructor(sampleRate, channels) {
    this.blockFrames = Math.round(LOUDNESS_BLOCK_S * sampleRate);
    this.filters = Array.from({ length: channels }, () =>
      kWeightingCoefficients(sampleRate).map(({ b, a }) => new Biquad(b, a)),
    );
    this.reset();
  }

  reset() {
    this.blockSum = 0;
    this.blockFill = 0;
    this.blocks = [];
  }

  process(channels, count) {
    for (let i = 0; i < count; i++) {
      let sum = 0;
      for (let c = 0; c < channels.length; c++) {
        const [shelf, highPass] = this.filters[c];
        const z = highPass.step(shelf.step(channels[c][i]));
        sum += z * z;
      }
      this.blockSum += sum;
      this.blockFill += 1;
      if (this.blockFill === this.blockFrames) {
        this.blocks.push(this.blockSum / this.blockFrames);
        if (this.blocks.length > SHORT_TERM_BLOCKS) this.blocks.shift();
        this.blockSum = 0;
        this.blockFill = 0;
      }
    }
  }

  windowLufs(blockCount) {
    if (this.blocks.length < blockCount) return null;
    let sum = 0;
    for (let i = this.blocks.length - blockCount; i < this.blocks.length; i++) sum += this.blocks[i];
    const power = sum / blockCount;
    return power > 0 ? -0.691 + 10 * Math.log10(power) : SILENCE_DB;
  }

  momentaryLufs() {
    return this.windowLufs(MOMENTARY_BLOCKS);
  }

  shortTermLufs() {
    return this.windowLufs(SHORT_TERM_BLOCKS);
  }
}

/**
 * The DR meter's number from per-block values of one channel (the published method of the Pleasurize Music
 * Foundation's DR meter): `rms` holds each 3-s block's sqrt(2 * mean square), `peaks` each block's sample peak.
 * DR = 20 log10(second-highest block peak / RMS of the loudest 20 % of blocks (at least one)). `null` with
 * fewer than two blocks or silence.
 */
export function drFromBlocks(rms, peaks) {
  if (rms.length < 2) return null;
  const loudest = [...rms].sort((x, y) => y - x);
  const n = Math.max(1, Math.floor(rms.length * DR_LOUDEST_FRACTION));
  let sum = 0;
  for (let i = 0; i < n; i++) sum += loudest[i] * loudest[i];
  const topRms = Math.sqrt(sum / n);
  const secondPeak = [...peaks].sort((x, y) => y - x)[1];
  if (topRms <= 0 || secondPeak <= 0) return null;
  return 20 * Math.log10(secondPeak / topRms);
}

/**
 * DR meter per channel over everything pushed so far: 3-s blocks, the unfinished last block counting as one
 * (as the DR meter counts a track's shorter last block). `result()` gives each channel's DR and their mean.
 */
export class DrMeter {
  constructor(sampleRate, channels) {
    this.blockFrames = Math.round(DR_BLOCK_S * sampleRate);
    this.channels = channels;
    this.reset();
  }

  reset() {
    this.rms = Array.from({ length: this.channels }, () => []);
    this.peaks = Array.from({ length: this.channels }, () => []);
    this.sumSquares = new Float64Array(this.channels);
    this.peak = new Float64Array(this.channels);
    this.fill = 0;
  }

  process(channels, count) {
    let i = 0;
    while (i < count) {
      const take = Math.min(count - i, this.blockFrames - this.fill);
      for (let c = 0; c < this.channels; c++) {
        const x = channels[c];
        let sum = this.sumSquares[c];
        let peak = this.peak[c];
        for (let j = i; j < i + take; j++) {
          sum += x[j] * x[j];
          const a = Math.abs(x[j]);
          if (a > peak) peak = a;
        }
        this.sumSquares[c] = sum;
        this.peak[c] = peak;
      }
      this.fill += take;
      i += take;
      if (this.fill === this.blockFrames) this.closeBlock();
    }
  }

  closeBlock() {
    for (let c = 0; c < this.channels; c++) {
      this.rms[c].push(Math.sqrt((2 * this.sumSquares[c]) / this.fill));
      this.peaks[c].push(this.peak[c]);
      this.sumSquares[c] = 0;
      this.peak[c] = 0;
    }
    this.fill = 0;
  }

  result() {
    const perChannel = [];
    for (let c = 0; c < this.channels; c++) {
      const rms = [...this.rms[c]];
      const peaks = [...this.peaks[c]];
      if (this.fill > 0) {
        rms.push(Math.sqrt((2 * this.sumSquares[c]) / this.fill));
        peaks.push(this.peak[c]);
      }
      perChannel.push(drFromBlocks(rms, peaks));
    }
    const known = perChannel.filter((v) => v !== null);
    const value = known.length === perChannel.length ? known.reduce((s, v) => s + v, 0) / known.length : null;
    return { channels: perChannel, value, blocks: this.rms[0].length + (this.fill > 0 ? 1 : 0) };
  }
}

/**
 * Every meter of the Studio for one stereo stream (mono is read as L = R): VU and peak per channel,
 * correlation, loudness, DR, and decimated (L, R) pairs for the goniometer.
 */
export class MeterBank {
  constructor(sampleRate, { goniometerPoints = 1024, goniometerStep = 3 } = {}) {
    this.sampleRate = sampleRate;
    this.vu = [new VuMeter(sampleRate), new VuMeter(sampleRate)];
    this.peak = [new PeakMeter(sampleRate), new PeakMeter(sampleRate)];
    this.correlation = new CorrelationMeter(sampleRate);
    this.loudness = new LoudnessMeter(sampleRate, 2);
    this.dr = new DrMeter(sampleRate, 2);
    this.points = new Float32Array(goniometerPoints * 2);
    this.pointCount = 0;
    this.step = goniometerStep;
    this.phase = 0;
    this.frames = 0;
  }

  reset() {
    for (const m of [...this.vu, ...this.peak, this.correlation, this.loudness, this.dr]) m.reset();
    this.pointCount = 0;
    this.frames = 0;
  }

  /** Measure `count` frames; `dynamics` false leaves the DR meter out (silence while nothing plays). */
  process(left, right, count, dynamics = true) {
    const channels = [left, right];
    for (let c = 0; c < 2; c++) {
      this.vu[c].process(channels[c], count);
      this.peak[c].process(channels[c], count);
    }
    this.correlation.process(left, right, count);
    this.loudness.process(channels, count);
    if (dynamics) this.dr.process(channels, count);
    const capacity = this.points.length / 2;
    for (let i = this.phase; i < count; i += this.step) {
      if (this.pointCount === capacity) break;
      this.points[2 * this.pointCount] = left[i];
      this.points[2 * this.pointCount + 1] = right[i];
      this.pointCount += 1;
    }
    this.phase = (this.phase + Math.ceil((count - this.phase) / this.step) * this.step) - count;
    this.frames += count;
  }

  /** The current readings (and the goniometer points since the last call, which it hands over). */
  readings() {
    const points = this.points.slice(0, this.pointCount * 2);
    this.pointCount = 0;
    return {
      timeS: this.frames / this.sampleRate,
      vu: this.vu.map((m) => m.readingVu()),
      vuLevelDbfs: this.vu.map((m) => m.levelDbfs()),
      peakDbfs: this.peak.map((m) => m.displayDb),
      maxPeakDbfs: this.peak.map((m) => m.maxDb),
      correlation: this.correlation.value(),
      momentaryLufs: this.loudness.momentaryLufs(),
      shortTermLufs: this.loudness.shortTermLufs(),
      dr: this.dr.result(),
      points,
    };
  }
}
