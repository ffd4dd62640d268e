// bench/node_parser.mjs - npm's eventsource-parser (4.x) on a file of
// text/event-stream bytes, for `make bench-node` (mk/bench-node.sh copies it
// next to the node_modules it installs, in $(O)/bench-node).
//
//   node node_parser.mjs FILE [REPS]
//
// Feeds the bytes in 64 KiB pieces, each decoded with a streaming
// TextDecoder (what a client does: the parser takes strings), to a parser
// whose onEvent counts events and data characters (bytes, for the ASCII
// shapes of bench/gen.c). Prints "MB/s events data" for the best of REPS (3).
import { readFileSync } from 'node:fs';
import { createParser } from 'eventsource-parser';

const [file, repsArg] = process.argv.slice(2);
if (!file) {
  console.error('usage: node node_parser.mjs FILE [REPS]');
  process.exit(2);
}
const buf = readFileSync(file);
const reps = Number(repsArg) > 0 ? Number(repsArg) : 3;
const PIECE = 65536;
let best = Infinity;
let events = 0;
let data = 0;
for (let r = 0; r < reps; r++) {
  let ev = 0;
  let db = 0;
  const parser = createParser({
    onEvent(e) {
      ev++;
      db += e.data.length;
    },
  });
  const dec = new TextDecoder('utf-8');
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < buf.length; i += PIECE)
    parser.feed(dec.decode(buf.subarray(i, i + PIECE), { stream: true }));
  parser.feed(dec.decode());
  parser.reset();
  const t = Number(process.hrtime.bigint() - t0) / 1e9;
  if (t < best) best = t;
  events = ev;
  data = db;
}
console.log(`${(buf.length / best / 1e6).toFixed(1)} ${events} ${data}`);
