// The attribute display's settings; this default sets nothing.
//
// A deployer may provide a config.js of their own (in <web_dir>/attribute-ui/,
// see docs/agent-screens.md), compatible with the reference implementation's:
//
//   window.SERVER_URL = "https://plugin.example.nl";   // talk to that plugin instead of this one
//   window.TRANSLATIONS = {                             // merged over the plugin's own labels
//     nl: { report_move: "Verhuizing doorgeven", email: "E-mailadres" },
//   };
