// The attribute display: one call's purpose and verified attributes, kept live.
//
// The page's address is <display>/?<ContactId>: the whole query string is the
// Amazon Connect contact id. Data comes as server-sent events from
// <server>/session_events/<ContactId>, where <server> is window.SERVER_URL when
// config.js sets it, else the plugin that served this page. Everything the
// server sends is put in the page with textContent, never parsed as HTML.

const CONTACT_ID = /^[A-Za-z0-9_.-]{1,256}$/;
const RECONNECT_MS = 3000; // when the browser has given up on the stream itself
const FALLBACK_LOCALE = "nl";
const DATA_STATES = new Set(["waiting", "verified", "failed"]);

const view = {
  contactId: readContactId(),
  server: serverBase(),
  builtin: {}, // strings.json: locale -> interface key -> text
  locale: FALLBACK_LOCALE, // the server's choice once it has answered
  labels: {}, // the server's flat map for `locale`: interface strings and configured labels
  data: null, // the last session event with a purpose (waiting, verified or failed)
  state: "loading", // loading | waiting | verified | failed | no_session | unreachable
};

/** An own string property of a plain object, else undefined (never "constructor" and friends). */
function own(map, key) {
  if (map !== null && typeof map === "object" && Object.hasOwn(map, key) && typeof map[key] === "string") {
    return map[key];
  }
  return undefined;
}

function primary(locale) {
  return locale.split("-")[0];
}

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

/** The deployer's window.TRANSLATIONS for the current locale (exact, else by language), if any. */
function overrides() {
  const all = window.TRANSLATIONS;
  if (all === null || typeof all !== "object") {
    return undefined;
  }
  const names = Object.keys(all);
  const name = names.find((n) => n.toLowerCase() === view.locale) ??
    names.find((n) => n.toLowerCase() === primary(view.locale));
  return name === undefined ? undefined : all[name];
}

/** An interface string: config.js, then the server's labels, then the built-in strings. */
function text(key) {
  const builtin = view.builtin[view.locale] ?? view.builtin[primary(view.locale)];
  return own(overrides(), key) ?? own(view.labels, key) ?? own(builtin, key) ?? own(view.builtin.en, key) ?? key;
}

/** A purpose tag's or attribute key's label: config.js, then the server's, then the tag itself. */
function tagLabel(key, serverLabel) {
  return own(overrides(), key) ?? (typeof serverLabel === "string" ? serverLabel : undefined) ?? key;
}

function guessLocale(available) {
  for (const tag of navigator.languages ?? [navigator.language]) {
    const lower = String(tag).toLowerCase();
    for (const candidate of [lower, primary(lower)]) {
      if (available.includes(candidate)) {
        return candidate;
      }
    }
  }
  return FALLBACK_LOCALE;
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
};

function render() {
  const main = document.getElementById("display");
  const data = view.state === "no_session" ? null : view.data;
  main.dataset.state = view.state;
  main.classList.toggle("stale", view.state === "unreachable" && data !== null);
  document.documentElement.lang = view.locale;
  document.title = text("title");
  document.getElementById("status").textContent = text(STATUS_KEYS[view.state]);

  const purpose = document.getElementById("purpose");
  purpose.hidden = data === null;
  document.getElementById("purpose-heading").textContent = `${text("purpose")}:`;
  document.getElementById("purpose-label").textContent = data ? tagLabel(data.purpose, data.purpose_label) : "";

  const list = document.getElementById("attributes");
  const attributes = data?.state === "verified" && Array.isArray(data.attributes) ? data.attributes : [];
  const items = attributes.map((attribute) => {
    const item = element("div", "attribute", "");
    const label = tagLabel(String(attribute.key), attribute.label);
    const term = element("dt", "", label);
    term.title = label;
    item.append(term, element("dd", "", String(attribute.value ?? "")));
    return item;
  });
  if (data?.state === "verified" && items.length === 0) {
    items.push(element("div", "attribute empty", text("no_attributes")));
  }
  list.replaceChildren(...items);
}

// --------------------------------------------------------------------------- the live connection

function parse(raw) {
  try {
    const value = JSON.parse(raw);
    return value !== null && typeof value === "object" ? value : null;
  } catch {
    return null;
  }
}

function onLabels(event) {
  const message = parse(event.data);
  if (message === null) {
    return;
  }
  if (typeof message.locale === "string") {
    view.locale = message.locale.toLowerCase();
  }
  view.labels = message.labels !== null && typeof message.labels === "object" ? message.labels : {};
  render();
}

function onSession(event) {
  const message = parse(event.data);
  if (message === null) {
    return;
  }
  if (typeof message.locale === "string") {
    view.locale = message.locale.toLowerCase();
  }
  if (DATA_STATES.has(message.state)) {
    view.data = message;
    view.state = message.state;
  } else if (message.state === "no_session") {
    view.data = null;
    view.state = "no_session";
  } else {
    view.state = "unreachable"; // "unavailable": the plugin's store does not answer; it retries
  }
  render();
}

function connect() {
  const source = new EventSource(`${view.server}/session_events/${encodeURIComponent(view.contactId)}`);
  source.addEventListener("labels", onLabels);
  source.addEventListener("session", onSession);
  source.addEventListener("error", () => {
    view.state = "unreachable";
    render();
    if (source.readyState === EventSource.CLOSED) {
      // Not a dropped stream (those the browser retries) but a refusal, e.g. a
      // proxy's 502 while the plugin restarts: start over after a pause.
      setTimeout(connect, RECONNECT_MS);
    }
  });
}

async function loadStrings() {
  try {
    const response = await fetch(new URL("strings.json", import.meta.url), { cache: "no-cache" });
    if (response.ok) {
      view.builtin = await response.json();
    }
  } catch {
    // Without them the page shows keys until the server's labels arrive.
  }
}

async function main() {
  await loadStrings();
  view.locale = guessLocale([
    ...Object.keys(view.builtin),
    ...Object.keys(window.TRANSLATIONS ?? {}).map((name) => name.toLowerCase()),
  ]);
  if (view.contactId === null) {
    view.state = "no_session";
    render();
    return;
  }
  render();
  connect();
}

main();
