// The Studio's AudioWorklet: passes its stereo input through unchanged and measures it with the meters of
// dsp.js, posting readings every `reportS` seconds (and once more, marked final, at `endFrame` when given:
// an offline measurement of a whole track). Messages: {reset: true} starts every meter afresh; {dynamics: bool}
// lets the DR meter count what arrives or not (the page turns it off while paused, so silence is not counted).
import { MeterBank } from "./dsp.js";

const SILENT = new Float32Array(128);

class MeterProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const config = options.processorOptions || {};
    this.bank = new MeterBank(sampleRate);
    this.reportFrames = Math.round((config.reportS || 0.05) * sampleRate);
    this.endFrame = config.endFrame || Infinity;
    this.dynamics = config.dynamics ?? true; // whether the DR meter counts what arrives (off while paused)
    this.sinceReport = 0;
    this.done = false;
    this.port.onmessage = (event) => {
      if (event.data.reset) this.bank.reset();
      if (event.data.dynamics !== undefined) this.dynamics = event.data.dynamics;
    };
  }

  process(inputs, outputs) {
    const input = inputs[0];
    const output = outputs[0];
    let count = input.length > 0 ? input[0].length : 128;
    const left = input.length > 0 ? input[0] : SILENT;
    const right = input.length > 1 ? input[1] : left;
    for (let c = 0; c < output.length; c++) output[c].set(c === 0 ? left : right);
    if (this.done) return true;
    count = Math.min(count, this.endFrame - this.bank.frames);
    this.bank.process(left, right, count, this.dynamics);
    this.sinceReport += count;
    const final = this.bank.frames >= this.endFrame;
    if (this.sinceReport >= this.reportFrames || final) {
      this.sinceReport = 0;
      const readings = this.bank.readings();
      this.port.postMessage({ ...readings, final }, [readings.points.buffer]);
      this.done = final;
    }
    return true;
  }
}

registerProcessor("sonantica-meters", MeterProcessor);
