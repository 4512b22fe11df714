// The login link carries a one-time code in its fragment (#code=…), which the browser never
// sends to a server: exchanged here for this browser's session cookie, then the page opens.
const status = document.getElementById("login-status");
const help = document.getElementById("login-help");

function fail(message) {
  status.textContent = message;
  help.hidden = false;
}

async function logIn() {
  const code = new URLSearchParams(location.hash.slice(1)).get("code");
  history.replaceState(null, "", "/login"); // the code leaves the address bar and history
  if (!code) return fail("Not logged in.");
  const response = await fetch("/login", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ code }),
  });
  if (response.ok) {
    status.textContent = "Logged in.";
    location.replace("/");
    return;
  }
  const body = await response.json().catch(() => ({}));
  fail(body.error?.message || `The hub answered ${response.status}.`);
}

logIn().catch((error) => fail(`Could not log in: ${error.message}`));
