// keymint browser demo: plain ES module, no build step.
// 1. a non-extractable P-256 key; 2. a DPoP-bound token from a publishable key; 3. an API call with
// a fresh proof; 4. the same token without its key is refused; 5. a backend-delegated token.

const b64url = (bytes) =>
  btoa(String.fromCharCode(...new Uint8Array(bytes))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
const text = (s) => new TextEncoder().encode(s);
const sha256 = async (s) => b64url(await crypto.subtle.digest("SHA-256", text(s)));
const show = (id, message, ok) => {
  const el = document.getElementById(id);
  el.textContent = message;
  el.className = ok ? "ok" : "refused";
};

// The private key never leaves WebCrypto: `extractable: false`.
const keys = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, ["sign"]);
const { crv, kty, x, y } = await crypto.subtle.exportKey("jwk", keys.publicKey);
const publicJwk = { crv, kty, x, y };
// RFC 7638 thumbprint: required members in lexicographic order, no whitespace.
const jkt = await sha256(JSON.stringify({ crv, kty, x, y }));
document.getElementById("jkt").textContent = jkt;

async function proof(htm, htu, token) {
  const header = { typ: "dpop+jwt", alg: "ES256", jwk: publicJwk };
  const claims = { jti: crypto.randomUUID(), htm, htu, iat: Math.floor(Date.now() / 1000) };
  if (token) claims.ath = await sha256(token);
  const input = `${b64url(text(JSON.stringify(header)))}.${b64url(text(JSON.stringify(claims)))}`;
  // WebCrypto ECDSA signatures are r || s, exactly what JWS ES256 wants.
  const sig = await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, keys.privateKey, text(input));
  return `${input}.${b64url(sig)}`;
}

async function callApi(api, token) {
  const url = `${api}/orders`;
  const res = await fetch(url, {
    headers: { Authorization: `DPoP ${token}`, DPoP: await proof("GET", url, token) },
  });
  return { status: res.status, body: await res.text() };
}

const config = await (await fetch("config.json")).json();
try {
  // 1. A publishable key, from an allowed origin, with a proof: a token bound to our key.
  const tokenUrl = `${config.issuer}/v1/token`;
  const res = await fetch(tokenUrl, {
    method: "POST",
    headers: {
      Authorization: `Bearer ${config.publishable_key}`,
      "Content-Type": "application/json",
      DPoP: await proof("POST", tokenUrl),
    },
    body: JSON.stringify({ scope: "orders:read", audience: config.audience }),
  });
  const body = await res.json();
  if (!res.ok) throw new Error(`${res.status} ${body.error}: ${body.error_description}`);
  show("status-token", `${res.status}: token_type ${body.token_type}, expires in ${body.expires_in}s`, true);
  document.getElementById("token").textContent = body.access_token;

  const api = await callApi(config.api, body.access_token);
  show("status-api", `${api.status}`, api.status === 200);
  document.getElementById("api-result").textContent = api.body;

  // 2. The same token, lifted out of the page and used without the key: refused.
  const lifted = await fetch(`${config.api}/orders`, { headers: { Authorization: `Bearer ${body.access_token}` } });
  show("status-replay", `${lifted.status}: refused, as it must be`, lifted.status === 401);
} catch (e) {
  show("status-token", `token request failed: ${e.message}`, false);
}

try {
  // 3. Backend delegation: our backend exchanges its secret key for a narrower token bound to our key.
  const res = await fetch("delegate", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ jkt }),
  });
  const body = await res.json();
  if (!res.ok) throw new Error(`${res.status} ${body.error}`);
  show("status-delegated-token", `${res.status}: token_type ${body.token_type}, scope ${body.scope}`, true);
  const api = await callApi(config.api, body.access_token);
  show("status-delegated", `${api.status}`, api.status === 200);
} catch (e) {
  show("status-delegated-token", `delegation failed: ${e.message}`, false);
}
const done = document.getElementById("done");
done.textContent = "done";
done.hidden = false;
