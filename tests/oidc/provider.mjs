// A real OpenID provider for the agent sign-in tests: Node's oidc-provider on 127.0.0.1.
//
// Started by tests/fixtures/agent_sign_in.py as
//   node provider.mjs '<json settings>'
// with settings {port, client_id, client_secret, redirect_uris, accounts}, where
// accounts maps a login name to its claims ({email, name, groups}). The sign-in
// page is the provider's own development page: any password is accepted for a
// known login (an unknown login gets no account). It prints "ready <issuer>" once
// it listens. Never use this for anything but tests.

import { generateKeyPairSync, randomBytes } from "node:crypto";

import Provider from "oidc-provider";

const settings = JSON.parse(process.argv[2]);
const issuer = `http://127.0.0.1:${settings.port}`;

// A fresh RS256 signing key per run: the plugin finds it through the JWKS endpoint.
const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: "jwk" }), kid: `test-${randomBytes(4).toString("hex")}`, use: "sig", alg: "RS256" };

const provider = new Provider(issuer, {
  clients: [{
    client_id: settings.client_id,
    client_secret: settings.client_secret,
    redirect_uris: settings.redirect_uris,
    grant_types: ["authorization_code"],
    response_types: ["code"],
    token_endpoint_auth_method: "client_secret_basic",
  }],
  jwks: { keys: [signingKey] },
  cookies: { keys: [randomBytes(32).toString("hex")] },
  // The claims of the requested scopes go into the ID token, as Entra ID and others put them there.
  conformIdTokenClaims: false,
  claims: {
    openid: ["sub"],
    email: ["email", "email_verified"],
    profile: ["name"],
    groups: ["groups"],
  },
  scopes: ["openid", "email", "profile", "groups"],
  // PKCE for every client, so the plugin's code_verifier is really checked.
  pkce: { required: () => true },
  features: { devInteractions: { enabled: true }, rpInitiatedLogout: { enabled: true } },
  async findAccount(ctx, id) {
    const account = settings.accounts[id];
    if (!account) {
      return undefined;
    }
    return {
      accountId: id,
      async claims() {
        return { sub: id, email: account.email, email_verified: true, name: account.name, groups: account.groups };
      },
    };
  },
});

// The development pages import web fonts from the internet: keep the browser on this machine.
provider.use(async (ctx, next) => {
  await next();
  ctx.set("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; form-action *");
});

provider.listen(settings.port, "127.0.0.1", () => {
  console.log(`ready ${issuer}`);
});
