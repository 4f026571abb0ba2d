// A hand-written stand-in for the amazon-connect-streams library: the same `connect`
// calls the agent page makes, with handles for the test to fire contact events.
//
// Only tests/browser/test_agent_sign_in.py still uses it (its plugins run as separate
// processes with streams_url pointing elsewhere). Every other agent page test drives
// Amazon's real library against the CCP stand-in (ccp_standin.js); new tests should too.
(() => {
  const contacts = new Map(); // contact id -> its onDestroy callbacks
  let subscriber = null;
  window.standIn = {
    ccp: null,
    fire(contactId) {
      const destroyed = [];
      contacts.set(contactId, destroyed);
      subscriber({ getContactId: () => contactId, onDestroy: (callback) => destroyed.push(callback) });
    },
    destroy(contactId) {
      for (const callback of contacts.get(contactId) ?? []) {
        callback();
      }
      contacts.delete(contactId);
    },
  };
  window.connect = {
    core: {
      initCCP(container, options) {
        window.standIn.ccp = { containerId: container.id, options };
        const panel = document.createElement("div");
        panel.textContent = "Contact Control Panel (test stand-in)";
        Object.assign(panel.style, {
          height: "100%", display: "grid", placeItems: "center", background: "#f6f8fa", color: "#59636e",
        });
        container.append(panel);
      },
    },
    contact(callback) {
      subscriber = callback;
    },
  };
})();
