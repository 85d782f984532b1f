// Pre-compress the built assets: the node serves file.gz to clients that accept gzip
// (src/cloudcc/web/serve.py), so no CPU is spent compressing on each request.
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";

const root = new URL("../../src/cloudcc/web/static/", import.meta.url).pathname;
const compressible = /\.(js|css|html|svg|json|txt)$/;

function walk(dir) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path);
    else if (compressible.test(name)) writeFileSync(path + ".gz", gzipSync(readFileSync(path), { level: 9 }));
  }
}
walk(root);
