// The attribute display: one call's purpose and verified attributes, kept live.
//
// The page's address is <display>/?<ContactId>: the whole query string is the
// Amazon Connect contact id. <server> is window.SERVER_URL when config.js sets it,
// else the plugin that served this page. At once the page asks
//   <server>/display_labels          the labels in the browser's language,
//   <server>/session_info/<id>       the call's state now, for the first paint,
//   <server>/session_events/<id>     server-sent events, from then on.
// The stream is the truth once it speaks. When it fails, /session_info tells why:
// 401 (the agent's sign-in has ended), 403 (this agent may not see this call) or
// anything else (the plugin is unreachable: retry). Everything the server sends is
// put in the page with textContent, never parsed as HTML.

import { loadBuiltinStrings, tagLabel, text, useServerLabels, words } from "./labels.js";

const CONTACT_ID = /^[A-Za-z0-9_.-]{1,256}$/;
const RECONNECT_MS = 3000; // when the browser has given up on the stream itself
const RECHECK_MS = 5000; // how often a display that may not see data asks again
const RESULT_STATES = new Set(["verified", "failed"]);
const DATA_STATES = new Set(["waiting", ...RESULT_STATES]);
const FRAMED = window.self !== window.top;
// The agent's sign-in cookie goes along to a window.SERVER_URL on another origin too; the
// plugin allows that (Access-Control-Allow-Credentials) for the origins in allowed_origins only.
const CREDENTIALS = { credentials: "include" };

const view = {
  contactId: readContactId(),
  server: serverBase(),
  // loading | waiting | verified | failed | no_session | unreachable | signed_out | forbidden
  state: "loading",
  data: null, // the call's last known {state, purpose, purpose_label?, attributes?}
  loginUrl: null, // where to sign in again (signed_out)
  streamed: false, // the stream has sent the call's state: it is the truth from now on
  streamDown: false, // the stream failed and is not back yet
  source: null, // the EventSource
  recheck: null, // the timer that asks again while signed out or forbidden
};

function readContactId() {
  try {
    const id = decodeURIComponent(window.location.search.slice(1));
    return CONTACT_ID.test(id) ? id : null;
  } catch {
    return null; // a malformed %-escape
  }
}

function serverBase() {
  const configured = typeof window.SERVER_URL === "string" ? window.SERVER_URL.trim() : "";
  return (configured || new URL("..", window.location.href).href).replace(/\/+$/, "");
}

function endpoint(name) {
  return `${view.server}/${name}/${encodeURIComponent(view.contactId)}`;
}

// --------------------------------------------------------------------------- rendering

function element(tag, className, content) {
  const node = document.createElement(tag);
  if (className) {
    node.className = className;
  }
  node.textContent = content;
  return node;
}

const STATUS_KEYS = {
  loading: "loading",
  waiting: "waiting",
  verified: "attributes",
  failed: "failed",
  no_session: "no_session",
  unreachable: "unreachable",
  signed_out: "signed_out",
  forbidden: "forbidden",
};

/** Tell screen readers, politely: the live region's text changes. */
function announce(message) {
  document.getElementById("announcement").textContent = message;
}

function render() {
  const main = document.getElementById("display");
  const data = ["no_session", "signed_out", "forbidden"].includes(view.state) ? null : view.data;
  main.dataset.state = view.state;
  main.classList.toggle("stale", view.state === "unreachable" && data !== null);
  document.documentElement.lang = words.locale;
  document.title = text("title");
  document.getElementById("status").textContent = text(STATUS_KEYS[view.state]);

  const purpose = document.getElementById("purpose");
  purpose.hidden = data === null;
  document.getElementById("purpose-heading").textContent = `${text("purpose")}:`;
  document.getElementById("purpose-label").textContent = data ? tagLabel(data.purpose, data.purpose_label) : "";

  renderSignIn();

  const list = document.getElementById("attributes");
  const attributes = data?.state === "verified" && Array.isArray(data.attributes) ? data.attributes : [];
  const items = attributes.map((attribute) => {
    const item = element("div", "attribute", "");
    item.append(element("dt", "", tagLabel(String(attribute.key), attribute.label)),
      element("dd", "", String(attribute.value ?? "")));
    return item;
  });
  if (data?.state === "verified" && items.length === 0) {
    items.push(element("div", "attribute empty", text("no_attributes")));
  }
  list.replaceChildren(...items);
}

/** The "sign in again" link: to the plugin's login_url, or to this page (a proxy signs in on the way). */
function renderSignIn() {
  const notice = document.getElementById("sign-in");
  notice.hidden = view.state !== "signed_out";
  if (notice.hidden) {
    return;
  }
  const link = document.getElementById("sign-in-link");
  link.href = signInUrl();
  // In the agent page's frame a new tab keeps the CCP (and the call) where it is.
  if (FRAMED) {
    link.target = "_blank";
    link.rel = "noopener";
  }
  link.textContent = FRAMED ? `${text("sign_in")} ${text("new_tab")}` : text("sign_in");
}

function signInUrl() {
  const here = window.location.href;
  let url;
  try {
    url = new URL(view.loginUrl ?? here, `${view.server}/`);
  } catch {
    return here;
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    return here; // never a javascript: or data: address from a server's answer
  }
  if (url.origin === window.location.origin && url.searchParams.has("next")) {
    url.searchParams.set("next", window.location.pathname + window.location.search); // back to this display
  }
  return url.href;
}

/** Move to `state` with `data`; announce a result that arrives while the agent looks, and a lost sign-in. */
function show(state, data) {
  const before = view.state;
  const awaited = before === "no_session" || view.data?.state === "waiting"; // the agent saw: no result yet
  if (data !== undefined) {
    view.data = data;
  }
  view.state = state;
  render();
  if (before === "loading") {
    return; // the first paint: nothing has changed for the agent yet
  }
  if (RESULT_STATES.has(view.data?.state) && state === view.data.state && awaited) {
    announce(`${text("result_arrived")}: ${text(STATUS_KEYS[state])}`);
  } else if ((state === "signed_out" || state === "forbidden") && before !== state) {
    announce(text(STATUS_KEYS[state]));
  }
}

// --------------------------------------------------------------------------- talking to the plugin

function parse(raw) {
  try {
    const value = JSON.parse(raw);
    return value !== null && typeof value === "object" ? value : null;
  } catch {
    return null;
  }
}

/** GET a JSON endpoint: `{status, body}`; null when the plugin cannot be reached (or refuses this origin). */
async function getJson(url) {
  try {
    const response = await fetch(url, { headers: { Accept: "application/json" }, cache: "no-store", ...CREDENTIALS });
    const body = parse(await response.text());
    return { status: response.status, body };
  } catch {
    return null;
  }
}

/** `/session_info`'s answer (the protocol's shape) as the display's data. */
function fromSessionInfo(info) {
  const result = info.auth_result;
  const state = result === null || result === undefined ? "waiting" : result.status === "succes" ? "verified" : "failed";
  const data = { state, purpose: String(info.purpose ?? "") };
  if (state === "verified" && result.attributes !== null && typeof result.attributes === "object") {
    data.attributes = Object.entries(result.attributes).map(([key, value]) => ({ key, value: String(value) }));
  }
  return data;
}

/**
 * What `/session_info` says, applied: "locked" (401, 403: the display may not show
 * this call), "ok" (200, 404) or "down" (anything else, or no answer). With `paint`,
 * an "ok" answer is shown, as stale data while the stream is down.
 */
function applyInfo(answer, { paint }) {
  if (answer?.status === 401) {
    view.loginUrl = typeof answer.body?.login_url === "string" ? answer.body.login_url : null;
    lockOut("signed_out");
    return "locked";
  }
  if (answer?.status === 403) {
    lockOut("forbidden");
    return "locked";
  }
  if (answer?.status === 200 && answer.body !== null) {
    if (paint) {
      const data = fromSessionInfo(answer.body);
      show(view.streamDown ? "unreachable" : data.state, data);
    }
    return "ok";
  }
  if (answer?.status === 404) {
    if (paint) {
      show(view.streamDown ? "unreachable" : "no_session", null);
    }
    return "ok";
  }
  return "down";
}

/** Signed out or forbidden: stop the stream, hide the data, ask again now and then. */
function lockOut(state) {
  closeStream();
  view.streamed = false;
  show(state, null);
  if (view.recheck === null) {
    view.recheck = setInterval(recheck, RECHECK_MS);
  }
}

/** While locked out: has the agent signed in again (or been allowed)? Then follow the call again. */
async function recheck() {
  if (!["signed_out", "forbidden"].includes(view.state)) {
    return;
  }
  const answer = await getJson(endpoint("session_info"));
  if (answer === null || ![200, 404].includes(answer.status)) {
    applyInfo(answer, { paint: false }); // still locked out (or the plugin is away): ask again later
    return;
  }
  clearInterval(view.recheck);
  view.recheck = null;
  await loadServerLabels(); // a sign-in may have brought another language
  applyInfo(answer, { paint: true });
  connect();
}

async function loadServerLabels() {
  const answer = await getJson(`${view.server}/display_labels`);
  if (answer?.status === 200) {
    useServerLabels(answer.body);
  }
}

function closeStream() {
  if (view.source !== null) {
    view.source.close();
    view.source = null;
  }
}

function onLabels(event) {
  useServerLabels(parse(event.data));
  render();
}

function onSession(event) {
  const message = parse(event.data);
  if (message === null) {
    return;
  }
  view.streamed = true;
  if (DATA_STATES.has(message.state)) {
    show(message.state, message);
  } else if (message.state === "no_session") {
    show("no_session", null);
  } else {
    show("unreachable"); // "unavailable": the plugin's store does not answer; it retries
  }
}

/** The stream failed (dropped, refused, or never opened): ask /session_info why. */
async function onStreamError(source) {
  view.streamDown = true;
  const answer = await getJson(endpoint("session_info"));
  if (source !== view.source || source.readyState === EventSource.OPEN) {
    return; // replaced, or already back
  }
  if (applyInfo(answer, { paint: false }) === "locked") {
    return; // recheck() takes over
  }
  show("unreachable");
  if (source.readyState === EventSource.CLOSED) {
    // Not a dropped stream (those the browser retries) but a refusal, e.g. a
    // proxy's 502 while the plugin restarts: start over after a pause.
    setTimeout(() => {
      if (source === view.source) {
        connect();
      }
    }, RECONNECT_MS);
  }
}

function connect() {
  closeStream();
  const source = new EventSource(endpoint("session_events"), { withCredentials: true });
  view.source = source;
  source.addEventListener("labels", onLabels);
  source.addEventListener("session", onSession);
  source.addEventListener("open", () => {
    view.streamDown = false;
  });
  source.addEventListener("error", () => onStreamError(source));
}

async function main() {
  if (view.contactId === null) {
    await loadBuiltinStrings();
    show("no_session", null);
    return;
  }
  const first = Promise.all([getJson(endpoint("session_info")), loadServerLabels()]);
  connect();
  await loadBuiltinStrings();
  if (view.state === "loading") {
    render(); // "Connecting…" in the browser's language, unless the stream was quicker
  }
  const [answer] = await first;
  if (applyInfo(answer, { paint: !view.streamed }) === "down" && view.state === "loading") {
    show("unreachable");
  }
}

document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible") {
    recheck(); // e.g. back from signing in, in another tab
  }
});

main();
