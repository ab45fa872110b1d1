// Sign-in page: the host's account (Navidrome, Jellyfin) or, with no host, the API token.
import { say, signInState } from "./api.js";

const HOSTS = { navidrome: "Navidrome", jellyfin: "Jellyfin" };

function nextPage() {
  const next = new URLSearchParams(location.search).get("next") || "/";
  return next.startsWith("/") && !next.startsWith("//") ? next : "/";
}

async function main() {
  const state = await signInState();
  if (state.session) {
    location.replace(nextPage());
    return;
  }
  const form = document.getElementById("sign-in");
  const message = document.getElementById("message");
  const useToken = state.host === "none";
  document.getElementById("account-fields").hidden = useToken;
  document.getElementById("token-field").hidden = !useToken;
  document.getElementById("hint").textContent = useToken
    ? "No media server is configured: sign in with the API token (SONANTICA_API__TOKEN or <data_dir>/api-token)."
    : `Sign in with your ${HOSTS[state.host] || state.host} user name and password.`;
  document.getElementById(useToken ? "token" : "username").focus();

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = useToken
      ? { token: form.token.value }
      : { username: form.username.value.trim(), password: form.password.value };
    if (Object.values(body).some((value) => !value)) {
      say(message, "Fill in every field.", "error");
      return;
    }
    const button = document.getElementById("submit");
    button.disabled = true;
    say(message, "Checking…");
    try {
      const response = await fetch("/auth/sign-in", {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        credentials: "same-origin",
        body: JSON.stringify(body),
      });
      const data = await response.json().catch(() => ({}));
      if (response.ok) {
        say(message, `Signed in as ${data.user}.`, "ok");
        location.replace(nextPage());
        return;
      }
      say(message, data.detail || `Sign-in failed (HTTP ${response.status}).`, "error");
    } catch (error) {
      say(message, `The server cannot be reached: ${error.message}`, "error");
    } finally {
      button.disabled = false;
    }
  });
}

main();
