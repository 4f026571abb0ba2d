// The agent's page: Amazon's Contact Control Panel (through the amazon-connect-streams
// library) and an iframe that shows the attribute display for the current contact.
//
// Settings come from config.js, with the reference's names: AmazonConnectURL (the CCP
// of the Amazon Connect instance), AttributeURL (the display; the page opens
// <AttributeURL>?<ContactId>) and StreamsURL (where the deployer serves the library's
// connect-streams-min.js); and CCPLoginURL, where the CCP's sign-in pop-up goes on an
// instance whose agents sign in through SAML.

const frame = document.getElementById("attributes");
const DISPLAY_MIN = 60; // px: the display's frame never gets smaller
const STEP = 20; // px per arrow key on the splitter
let shownContact = null;

function showProblem(message) {
  const problem = document.getElementById("problem");
  problem.textContent = message;
  problem.hidden = false;
}

function setting(name, fallback) {
  const value = window[name];
  return typeof value === "string" && value !== "" ? value : fallback;
}

function loadScript(src) {
  return new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.src = src;
    script.onload = resolve;
    script.onerror = () => reject(new Error(`could not load ${src}`));
    document.head.append(script);
  });
}

/** `<AttributeURL>?<ContactId>`, as the reference page makes it; one `?` when the URL already ends in one. */
function displayUrl(attributeUrl, contactId) {
  const base = attributeUrl.endsWith("?") ? attributeUrl : `${attributeUrl}?`;
  return base + encodeURIComponent(contactId);
}

function show(contactId) {
  shownContact = contactId;
  frame.src = displayUrl(setting("AttributeURL", "../attribute-ui/"), contactId);
}

function blank(contactId) {
  if (shownContact === contactId) {
    shownContact = null;
    frame.src = "about:blank";
  }
}

// --------------------------------------------------------------------------- the splitter

/** The display's height: dragged with a pointer, or with the arrow keys, Home and End. */
function setUpSplitter() {
  const area = document.getElementById("display");
  const splitter = document.getElementById("splitter");
  const largest = () => Math.max(DISPLAY_MIN, window.innerHeight - 120);
  const resize = (height) => {
    const clamped = Math.round(Math.min(largest(), Math.max(DISPLAY_MIN, height)));
    area.style.height = `${clamped}px`;
    splitter.setAttribute("aria-valuenow", String(clamped));
    splitter.setAttribute("aria-valuemax", String(largest()));
    splitter.setAttribute("aria-valuetext", `${clamped} px`);
  };
  splitter.setAttribute("aria-valuemin", String(DISPLAY_MIN));
  resize(area.getBoundingClientRect().height);

  splitter.addEventListener("keydown", (event) => {
    const height = area.getBoundingClientRect().height;
    const next = { ArrowDown: height + STEP, ArrowUp: height - STEP, Home: DISPLAY_MIN, End: largest() }[event.key];
    if (next !== undefined) {
      event.preventDefault();
      resize(next);
    }
  });
  splitter.addEventListener("pointerdown", (event) => {
    splitter.setPointerCapture(event.pointerId); // the frames below must not swallow the drag
    const top = area.getBoundingClientRect().top;
    const move = (moved) => resize(moved.clientY - top);
    splitter.addEventListener("pointermove", move);
    splitter.addEventListener("pointerup", () => splitter.removeEventListener("pointermove", move), { once: true });
  });
}

// --------------------------------------------------------------------------- the CCP

async function main() {
  setUpSplitter();
  const ccpUrl = setting("AmazonConnectURL", "");
  if (ccpUrl === "") {
    showProblem("The CCP address is not configured: set amazon_connect_url in the plugin's settings.");
    return;
  }
  if (typeof window.connect === "undefined") {
    const streamsUrl = setting("StreamsURL", "connect-streams-min.js");
    try {
      await loadScript(streamsUrl);
    } catch {
      showProblem(`The amazon-connect-streams library did not load from ${streamsUrl}: see the plugin's documentation.`);
      return;
    }
  }
  const connect = window.connect;
  const options = { ccpUrl, loginPopup: true, loginPopupAutoClose: true, softphone: { allowFramedSoftphone: true } };
  const loginUrl = setting("CCPLoginURL", "");
  if (loginUrl) {
    options.loginUrl = loginUrl; // SAML: the sign-in pop-up goes to the identity provider's Connect application
  }
  connect.core.initCCP(document.getElementById("ccp"), options);
  connect.contact((contact) => {
    const contactId = contact.getContactId();
    contact.onDestroy(() => blank(contactId));
    show(contactId);
  });
}

main();
