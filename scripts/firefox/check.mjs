// Drives Firefox (WebDriver BiDi, puppeteer-core) through the web client's pages; run by scripts/firefox_check.py,
// which serves the pages and passes one JSON argument:
//   {url, firefox, username, password, trackTitle, libraryTracks, monoTrackId, expectedDr, pulseServer}
// Prints one JSON object: {browser, checks: [{name, ok, detail}], consoleErrors: [...]}; exit status 0 either way
// (the Python side judges). Each check is independent: a failed one is recorded and the next one still runs.
import puppeteer from "puppeteer-core";

const config = JSON.parse(process.argv[2]);
const checks = [];
const consoleErrors = [];
const allowed = []; // console errors expected by the check that is running (substrings)

function record(name, ok, detail) {
  checks.push({ name, ok: Boolean(ok), detail: String(detail) });
}

async function check(name, body) {
  try {
    const detail = await body();
    record(name, true, detail);
  } catch (error) {
    record(name, false, error.message.split("\n")[0]);
  }
}

function expect(condition, message) {
  if (!condition) throw new Error(message);
}

const browser = await puppeteer.launch({
  browser: "firefox",
  executablePath: config.firefox,
  headless: true,
  env: { ...process.env, PULSE_SERVER: config.pulseServer },
  extraPrefsFirefox: { "media.autoplay.default": 0, "media.autoplay.blocking_policy": 0 },
});
const page = await browser.newPage();
page.setDefaultTimeout(20000);
await page.setViewport({ width: 1280, height: 900 });
page.on("console", (message) => {
  if (message.type() === "error" && !allowed.some((fragment) => message.text().includes(fragment))) {
    consoleErrors.push(`${page.url()}: ${message.text()}`);
  }
});
page.on("pageerror", (error) => consoleErrors.push(`${page.url()}: page error: ${error.message}`));

const text = (selector) => page.$eval(selector, (node) => node.innerText.trim().replace(/\s+/g, " "));
const count = (selector) => page.$$eval(selector, (nodes) => nodes.length);

await check("sign-in: wrong then right password on the Subsonic server", async () => {
  await page.goto(`${config.url}/`);
  await page.waitForFunction(() => location.pathname === "/signin.html");
  allowed.push("401");
  await page.type("#username", config.username);
  await page.type("#password", "not-the-password");
  await page.click("#submit");
  await page.waitForFunction(() => document.getElementById("message").textContent === "wrong user name or password");
  await page.$eval("#password", (input) => (input.value = ""));
  await page.type("#password", config.password);
  await page.keyboard.press("Enter");
  await page.waitForFunction(() => location.pathname === "/" && document.querySelectorAll("#tracks tbody tr").length > 0);
  allowed.pop();
  return await text("#who");
});

await check("library: coverage live over SSE, search narrows the list", async () => {
  await page.waitForFunction(() => document.getElementById("live").textContent === "live");
  const all = await count("#tracks tbody tr");
  await page.type("#q", "beta");
  await page.keyboard.press("Enter");
  await page.waitForFunction(() => document.querySelectorAll("#tracks tbody tr").length === 2);
  expect(all === config.libraryTracks, `${all} rows before the search, expected ${config.libraryTracks}`);
  return `${all} rows, 2 after searching "beta"; ${await text("#coverage [data-analyzer='tempo']")}`;
});

await check("track page: analysis, waveform, Sonic Match neighbours", async () => {
  await page.goto(`${config.url}/?q=${encodeURIComponent(config.trackTitle)}`);
  await page.waitForSelector("#tracks tbody a");
  await Promise.all([page.waitForNavigation(), page.click("#tracks tbody a")]);
  await page.waitForFunction(() => document.querySelectorAll("#facts div").length === 7);
  await page.waitForSelector("#waveform[data-points]");
  await page.waitForSelector("#similar li");
  const columns = await page.$eval("#waveform", (canvas) => {
    const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
    let drawn = 0;
    for (let x = 0; x < canvas.width; x++) {
      for (let y = 0; y < canvas.height; y++) {
        if (data[4 * (y * canvas.width + x) + 3] > 0) {
          drawn++;
          break;
        }
      }
    }
    return { drawn, width: canvas.width };
  });
  expect(columns.drawn > 0 && columns.drawn < columns.width, `waveform columns drawn: ${columns.drawn} of ${columns.width}`);
  return `${await text("h1")}; waveform ${columns.drawn} of ${columns.width} columns drawn; "${await text("#waveform-text")}"`;
});

await check("360 px: no sideways scroll on the library and track pages", async () => {
  const trackUrl = page.url();
  await page.setViewport({ width: 360, height: 740 });
  await page.goto(`${config.url}/`);
  await page.waitForSelector("#tracks tbody tr");
  const library = await page.evaluate(() => document.documentElement.scrollWidth);
  await page.goto(trackUrl);
  await page.waitForSelector("#waveform[data-points]");
  const track = await page.evaluate(() => document.documentElement.scrollWidth);
  await page.setViewport({ width: 1280, height: 900 });
  expect(library <= 360 && track <= 360, `scroll widths ${library} and ${track} px`);
  return `scroll widths ${library} px (library), ${track} px (track)`;
});

await check("Studio: meters move and read correlation +1 on an in-phase mono tone", async () => {
  await page.goto(`${config.url}/studio/?track=${config.monoTrackId}`);
  await page.waitForFunction(() => window.studio && (window.studio.ready || window.studio.error));
  const error = await page.evaluate(() => window.studio.error);
  expect(error === null, `Studio error: ${error}`);
  await page.click("#play");
  await page.waitForFunction(() => window.studio.position() > 1.2, { timeout: 20000 });
  const first = await page.evaluate(() => ({ ...window.studio.readings, frames: window.studio.frames }));
  await page.waitForFunction(() => window.studio.position() > 2.0, { timeout: 20000 });
  const second = await page.evaluate(() => ({
    ...window.studio.readings,
    frames: window.studio.frames,
    vuWidth: document.getElementById("vu-l").style.width,
    correlationText: document.getElementById("correlation").textContent,
    vuText: document.getElementById("vu-l-text").textContent,
  }));
  expect(second.correlation > 0.99, `correlation ${second.correlation}`);
  expect(Math.abs(second.peakDbfs[0] - -20) < 0.2, `peak ${second.peakDbfs[0]} dBFS, expected -20`);
  expect(Math.abs(second.vuLevelDbfs[0] - -20) < 0.5, `VU level ${second.vuLevelDbfs[0]} dBFS, expected -20`);
  expect(second.frames > first.frames, "no frame drawn while playing");
  expect(parseFloat(second.vuWidth) > 0, `VU bar width ${second.vuWidth}`);
  return `correlation ${second.correlation.toFixed(3)} (shown ${second.correlationText}), VU ${second.vuText} (bar ${second.vuWidth}), peak ${second.peakDbfs[0].toFixed(2)} dBFS, momentary ${second.momentaryLufs.toFixed(1)} LUFS, ${second.frames - first.frames} frames in 0.8 s of track`;
});

await check("Studio: whole-track DR measured offline by the worklet", async () => {
  await page.click("#measure-dr");
  await page.waitForFunction(() => window.studio.trackDr !== null, { timeout: 30000 });
  const dr = await page.evaluate(() => window.studio.trackDr);
  expect(dr.value !== null && Math.abs(dr.value - config.expectedDr) < 0.5, `DR ${dr.value}, Python ${config.expectedDr}`);
  return `DR ${dr.value.toFixed(2)} over ${dr.blocks} blocks (the same method in Python: ${config.expectedDr.toFixed(2)})`;
});

const version = await browser.version();
await browser.close();
console.log(JSON.stringify({ browser: version, checks, consoleErrors }));
