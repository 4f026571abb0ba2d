// The agent's page: Amazon's Contact Control Panel (through the amazon-connect-streams
// library) and an iframe that shows the attribute display for the current contact.
//
// Settings come from config.js: AmazonConnectURL (the CCP of the Amazon Connect
// instance), AttributeURL (the display; the contact id is appended to it) and
// StreamsURL (where the deployer serves the library's connect-streams-min.js).

const frame = document.getElementById("attributes");
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

function show(contactId) {
  shownContact = contactId;
  frame.src = setting("AttributeURL", "../attribute-ui/?") + encodeURIComponent(contactId);
}

function blank(contactId) {
  if (shownContact === contactId) {
    shownContact = null;
    frame.src = "about:blank";
  }
}

async function main() {
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
  connect.core.initCCP(document.getElementById("ccp"), {
    ccpUrl,
    softphone: { allowFramedSoftphone: true },
  });
  connect.contact((contact) => {
    const contactId = contact.getContactId();
    contact.onDestroy(() => blank(contactId));
    show(contactId);
  });
}

main();
