// A stock x402 client: @x402/fetch + @x402/evm 2.27.0, configured only as
// their documentation says. GOAT's tokens are not among the SDK's default
// assets, so the agent lists the token in spendControls.allowedAssets.
//
// usage: node stock-client.mjs <url> <private key> <network> <asset> [--no-allow]
// prints one JSON line: {status, body, paymentResponse, sent (the PAYMENT-SIGNATURE
// payloads it sent, decoded), error}
import { createRequire } from "node:module";
// Resolve the SDK from tools/ (pinned in tools/package.json).
const require = createRequire(new URL("../../tools/package.json", import.meta.url));
const { wrapFetchWithPayment, x402Client, decodePaymentResponseHeader } = require("@x402/fetch");
const { ExactEvmScheme } = require("@x402/evm");
const { privateKeyToAccount } = require("viem/accounts");

const [url, key, network, asset, flag] = process.argv.slice(2);
const account = privateKeyToAccount(key);
const config = {
  schemes: [{ network, client: new ExactEvmScheme(account) }],
};
if (flag !== "--no-allow") {
  config.spendControls = { allowedAssets: [{ network, asset }] };
}
const client = x402Client.fromConfig(config);
// The fetch handed to the SDK records the payment it sends (the test checks
// its shape); it changes nothing.
const sent = [];
const recordingFetch = (input, init) => {
  const headers = new Headers(init?.headers ?? (input instanceof Request ? input.headers : undefined));
  const p = headers.get("PAYMENT-SIGNATURE");
  if (p) sent.push(JSON.parse(Buffer.from(p, "base64").toString()));
  return fetch(input, init);
};
const fetchWithPayment = wrapFetchWithPayment(recordingFetch, client);
const out = { status: null, body: null, paymentResponse: null, sent, error: null };
try {
  const r = await fetchWithPayment(url, { method: "GET" });
  out.status = r.status;
  const text = await r.text();
  try { out.body = JSON.parse(text); } catch { out.body = text; }
  const h = r.headers.get("PAYMENT-RESPONSE");
  if (h) out.paymentResponse = decodePaymentResponseHeader(h);
} catch (e) {
  out.error = String(e && e.message ? e.message : e);
}
console.log(JSON.stringify(out));
