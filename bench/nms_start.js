// Start Node-Media-Server v4 (installed by bench/run into bench/.node) on
// loopback with a JS config object: RTMP and HTTP(-FLV) only, no webadmin,
// no API auth store, no recording, no TLS listeners.
// Usage: node nms_start.js RTMP_PORT HTTP_PORT DATA_DIR
"use strict";
const path = require("path");
const NodeMediaServer = require(path.join(__dirname, ".node", "node_modules", "node-media-server"));

const [rtmpPort, httpPort, dataDir] = process.argv.slice(2);
const config = {
  bind: "127.0.0.1",
  notify: { url: "" },
  store: { path: path.join(dataDir, "data") },
  auth: { play: false, publish: false, secret: "bench" },
  rtmp: { port: Number(rtmpPort) },
  http: { port: Number(httpPort) },
  webadmin: { enable: false },
  record: { auto: false, path: path.join(dataDir, "record") },
};
const nms = new NodeMediaServer(config, path.join(dataDir, "config.json"));
nms.run();
const stop = () => { nms.stop().finally(() => process.exit(0)); setTimeout(() => process.exit(0), 3000).unref(); };
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
