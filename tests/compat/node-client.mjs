#!/usr/bin/env node
// node-client.mjs — connect to a gateway with the real `openclaw-node` client (signed v2
// device block, client gateway-client/backend), call `health`, check the answer.
//   node node-client.mjs <url> <token> <identity.json> <node_modules base>
// Exit 0 when connect + health succeed; prints the device id on success.
import { createRequire } from "node:module";
import path from "node:path";
import fs from "node:fs";

const [url, token, identity, base] = process.argv.slice(2);
const host = new URL(url).hostname;
if (!(host === "127.0.0.1" || host === "[::1]" || host === "localhost")) {
  console.error("refusing non-loopback url");
  process.exit(2);
}
fs.mkdirSync(path.dirname(identity), { recursive: true });
const { OpenClawClient } = createRequire(path.join(base, "package.json"))("openclaw-node");
const client = new OpenClawClient({ url, token, autoReconnect: false, deviceIdentityPath: identity });
client.on("error", (e) => console.error("[client error]", e?.message || e));
let code = 0;
try {
  const hello = await Promise.race([
    client.connect(),
    new Promise((_, rej) => setTimeout(() => rej(new Error("connect timeout (10s)")), 10000)),
  ]);
  if (hello?.type !== "hello-ok" && hello?.protocol !== 4) throw new Error(`bad hello: ${JSON.stringify(hello)}`);
  const res = await client.request("health", {});
  if (!res.ok || res.payload?.ok !== true) throw new Error(`health failed: ${JSON.stringify(res)}`);
  const id = JSON.parse(fs.readFileSync(identity, "utf8"));
  console.log(`ok protocol=${hello.protocol} scopes=${JSON.stringify(hello.auth?.scopes)} device=${id.deviceId || id.id || ""}`);
} catch (e) {
  console.error(`FAILED: ${e?.message || e}`);
  code = 1;
} finally {
  await client.disconnect();
}
process.exit(code);
