// Child process for the concurrency and crash tests: runs createChain and
// prints each progress event, then the result, as one JSON line each.
import { createChain } from "../../../src/chain/create.js";

const [reference, store] = process.argv.slice(2) as [string, string];

const result = await createChain(reference, {
  store,
  onProgress: (event) => process.stdout.write(`${JSON.stringify({ progress: event })}\n`),
});
process.stdout.write(`${JSON.stringify({ result: { disk: result.disk, chain: result.chain } })}\n`);
