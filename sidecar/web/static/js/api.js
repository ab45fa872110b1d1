// Talking to the Sonántica API from the pages: the session (cookie + CSRF token), JSON calls, shared helpers.

let csrfToken = null;

export class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

/** The host kind and the current session ({host, session}); never fails with 401. */
export async function signInState() {
  const response = await fetch("/auth/session", { credentials: "same-origin" });
  const state = await response.json();
  csrfToken = state.session ? state.session.csrf_token : null;
  return state;
}

/** The signed-in session, or null after sending the browser to the sign-in page. */
export async function requireSession() {
  const state = await signInState();
  if (!state.session) {
    const next = location.pathname + location.search;
    location.replace(`/signin.html?next=${encodeURIComponent(next)}`);
    return null;
  }
  return state.session;
}

/** A JSON call; writes carry the session's CSRF token. Throws ApiError with the server's reason. */
export async function api(path, { method = "GET", body } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && csrfToken) headers["X-CSRF-Token"] = csrfToken;
  const response = await fetch(path, {
    method,
    headers,
    credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 204) return null;
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    if (response.status === 401) location.replace("/signin.html");
    throw new ApiError(response.status, data.detail || `HTTP ${response.status}`);
  }
  return data;
}

/** Fill the header: user name and a working sign-out button. */
export function setUpHeader(session) {
  const who = document.getElementById("who");
  if (who) who.textContent = session.user === "api-token" ? "signed in with the API token" : `signed in as ${session.user}`;
  const out = document.getElementById("sign-out");
  if (out) {
    out.hidden = false;
    out.addEventListener("click", async () => {
      await api("/api/session", { method: "DELETE" });
      location.replace("/signin.html");
    });
  }
}

/** Show a message in a status element (kind: "", "ok" or "error"). */
export function say(element, text, kind = "") {
  element.textContent = text;
  element.className = `status ${kind}`.trim();
}

export function fmt(value, digits = 1, unit = "") {
  if (value === null || value === undefined) return "–";
  return `${Number(value).toFixed(digits)}${unit ? ` ${unit}` : ""}`;
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  const s = Math.round(seconds);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

/** Element helper: el("td", {className: "num"}, "text", child...). */
export function el(tag, props = {}, ...children) {
  const node = Object.assign(document.createElement(tag), props);
  for (const child of children) node.append(child);
  return node;
}
