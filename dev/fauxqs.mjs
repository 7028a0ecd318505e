// Runs the fauxqs SQS emulator on 127.0.0.1 (its own CLI binds 0.0.0.0) on the port given by
// PUSHFN_SQS_PORT (default 4566), with its request logger off. Started by shared/local/emulator.
import { buildApp } from "fauxqs";

const port = Number.parseInt(process.env.PUSHFN_SQS_PORT ?? "4566", 10);
if (!Number.isInteger(port) || port < 1 || port > 65535) {
  console.error(`fauxqs: PUSHFN_SQS_PORT=${process.env.PUSHFN_SQS_PORT} is not a port`);
  process.exit(2);
}
const app = buildApp({ logger: false });
try {
  await app.listen({ port, host: "127.0.0.1" });
} catch (err) {
  console.error(`fauxqs: listen on 127.0.0.1:${port}: ${err.message}`);
  process.exit(1);
}
console.log(`fauxqs listening on 127.0.0.1:${port}`);
for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => {
    app.close().finally(() => process.exit(0));
  });
}
