// A stock x402 resource server: @x402/express 2.27.0 with the EVM exact
// scheme, whose facilitator is gmrelay's (`gmrelay run` with [x402]).
//
// usage: node stock-server.mjs <facilitator url> <network> <asset> <name> <version> <payTo> <amount>
// prints "listening <url>" once it serves GET /weather.
import { createRequire } from "node:module";
// Resolve the SDK from tools/ (pinned in tools/package.json).
const require = createRequire(new URL("../../tools/package.json", import.meta.url));
const express = require("express");
const { paymentMiddleware, x402ResourceServer } = require("@x402/express");
const { ExactEvmScheme } = require("@x402/evm/exact/server");
const { HTTPFacilitatorClient } = require("@x402/core/server");

const [facilitator, network, asset, name, version, payTo, amount] = process.argv.slice(2);
const app = express();
const resourceServer = new x402ResourceServer(new HTTPFacilitatorClient({ url: facilitator }))
  .register(network, new ExactEvmScheme());
app.use(
  paymentMiddleware(
    {
      "GET /weather": {
        accepts: {
          scheme: "exact",
          price: { amount, asset, extra: { name, version } },
          network,
          payTo,
        },
        description: "Weather, paid on GOAT, settled on Metis by gmrelay",
      },
    },
    resourceServer,
  ),
);
app.get("/weather", (req, res) => res.json({ weather: "sunny", temperature: 21 }));
const server = app.listen(0, "127.0.0.1", () => {
  console.log(`listening http://127.0.0.1:${server.address().port}/weather`);
});
