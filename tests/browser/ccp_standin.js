// A stand-in for Amazon Connect's Contact Control Panel (CCP), loaded in the iframe that the
// real amazon-connect-streams library creates in the agent page (connect.core.initCCP).
//
// It speaks the library's own iframe protocol, read from the installed package
// (release/connect-streams.js: IFrameConduit, WindowIOStream, KeepaliveManager,
// AgentDataProvider): every message, either way, is `{event, data}` sent with
// window.postMessage.
//
//   CCP -> page  "acknowledge" {id}   the CCP is up; the library then sends its
//                                      "configure" and starts its keepalive
//   page -> CCP  "synchronize"         keepalive; answered with "acknowledge"
//   page -> CCP  "configure" {...}     the page's initCCP parameters
//   CCP -> page  "agent::update" data  the agent's snapshot: state and contacts. The
//                                      library diffs it with the previous one and fires
//                                      contact::init for a new contact (connect.contact
//                                      callbacks), contact::ended when it leaves an active
//                                      state, contact::destroyed::<id> when it is gone.
//
// The test drives it through window.ccp (offer, accept, end, clear).
(() => {
  const ARN = "arn:aws:connect:eu-central-1:123456789012:instance/00000000-0000-4000-8000-000000000000";
  const AGENT_ID = "22222222-2222-4222-8222-222222222222";
  const QUEUE = { queueARN: `${ARN}/queue/11111111-1111-4111-8111-111111111111`, name: "BasicQueue" };
  const AGENT_QUEUE = { queueARN: `${ARN}/queue/agent/${AGENT_ID}`, name: null }; // each agent has one
  const contacts = new Map(); // contact id -> contact data, in arrival order
  const seen = [];

  function send(event, data) {
    window.parent.postMessage({ event, data }, "*");
  }

  function configuration() {
    return {
      name: "Test Agent",
      username: "test-agent",
      agentARN: `${ARN}/agent/${AGENT_ID}`,
      softphoneEnabled: true,
      permissions: [],
      dialableCountries: ["nl"],
      agentStates: [{ agentStateARN: `${ARN}/agent-state/available`, type: "routable", name: "Available" }],
      routingProfile: {
        name: "Basic Routing Profile",
        routingProfileARN: `${ARN}/routing-profile/33333333-3333-4333-8333-333333333333`,
        routingProfileId: `${ARN}/routing-profile/33333333-3333-4333-8333-333333333333`,
        defaultOutboundQueue: { ...QUEUE, queueId: QUEUE.queueARN },
        queues: [QUEUE, AGENT_QUEUE].map((queue) => ({ ...queue, queueId: queue.queueARN })),
      },
    };
  }

  function contactData(contactId, stateType) {
    const now = new Date();
    return {
      contactId,
      initialContactId: null,
      type: "voice",
      state: { type: stateType, timestamp: now },
      queue: { ...QUEUE, queueId: QUEUE.queueARN },
      attributes: {},
      contactFeatures: { attachmentsEnabled: false },
      connections: [
        {
          connectionId: `${contactId}-agent`,
          type: "agent",
          state: { type: stateType === "connected" ? "connected" : "connecting", timestamp: now },
          endpoint: { type: "agent", name: "Test Agent" },
        },
        {
          connectionId: `${contactId}-caller`,
          type: "inbound",
          state: { type: "connected", timestamp: now },
          endpoint: { type: "telephone_number", phoneNumber: "+31850000000" },
        },
      ],
    };
  }

  function update() {
    const now = new Date();
    const busy = [...contacts.values()].some((contact) => contact.state.type !== "ended");
    send("agent::update", {
      configuration: configuration(),
      snapshot: {
        state: busy
          ? { agentStateARN: null, type: "system", name: "Busy", startTimestamp: now }
          : { agentStateARN: `${ARN}/agent-state/available`, type: "routable", name: "Available", startTimestamp: now },
        nextState: null,
        agentAvailabilityState: { state: busy ? "Busy" : "Available", timeStamp: now },
        contacts: [...contacts.values()],
        snapshotTimestamp: now,
        localTimestamp: now.getTime(),
        skew: 0,
      },
    });
  }

  function setState(contactId, stateType) {
    contacts.set(contactId, contactData(contactId, stateType));
    update();
  }

  window.addEventListener("message", (message) => {
    if (message.source !== window.parent || message.data === null || typeof message.data !== "object") {
      return;
    }
    const { event, data } = message.data;
    seen.push(event);
    if (event === "synchronize") {
      send("acknowledge");
    } else if (event === "configure") {
      window.ccp.configured = data ?? {};
      update(); // the agent's first snapshot, as the CCP sends once it has the agent's data
    }
  });

  window.ccp = {
    configured: null, // the "configure" message's data: the page's initCCP parameters
    seen, // every event name the page sent
    offer: (contactId) => setState(contactId, "incoming"), // a call rings for this agent
    accept: (contactId) => setState(contactId, "connected"),
    end: (contactId) => setState(contactId, "ended"), // the caller hung up: after-call work
    clear(contactId) {
      // The agent closes the contact: it leaves the snapshot.
      contacts.delete(contactId);
      update();
    },
  };

  send("acknowledge", { id: "ccp-standin-port" });
})();
