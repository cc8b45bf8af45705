// `npm run readme` (tests/contract.sh readme): the program under "Use it from TypeScript" in
// the workspace's README.md, run as a reader would run it. In an empty folder it installs
// the SDK's packed tarball (and the compiler: typescript and @types/node, at the versions
// this package pins), compiles the program with `tsc --strict`, and runs it with node
// against the service at API_URL. The README can show no code that does not work.

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { packageDir, packSdk, repoRoot, run } from "./lib.mjs";

const apiUrl = process.env.API_URL;
if (!apiUrl) throw new Error("API_URL is not set: the program runs against a live service");

const readme = readFileSync(join(repoRoot, "README.md"), "utf8");
const section = readme.split(/^## /m).find((part) => part.startsWith("Use it from TypeScript"));
const program = section && /^```ts\n([\s\S]*?)^```/m.exec(section)?.[1];
if (!program) throw new Error('README.md has no ```ts block under "## Use it from TypeScript"');
const lines = program.trimEnd().split("\n").length;
if (lines < 10 || lines > 30) throw new Error(`the README's program has ${lines} lines; it should have 10 to 30`);

const { devDependencies } = JSON.parse(readFileSync(join(packageDir, "package.json"), "utf8"));
const folder = mkdtempSync(join(tmpdir(), "readme-program-"));
const packed = mkdtempSync(join(tmpdir(), "readme-sdk-"));
let status = 1;
try {
  const tarball = packSdk(packed);
  writeFileSync(join(folder, "package.json"), JSON.stringify({ name: "readme-program", private: true, type: "module" }));
  writeFileSync(join(folder, "main.ts"), program);
  console.error(`== in ${folder}: npm install the SDK's tarball, typescript and @types/node`);
  const tools = [`typescript@${devDependencies.typescript}`, `@types/node@${devDependencies["@types/node"]}`];
  if (run("npm", ["install", "--no-audit", "--no-fund", tarball, ...tools], { cwd: folder }) !== 0) {
    throw new Error("npm install failed");
  }
  console.error("== tsc --strict main.ts");
  const tscArgs = ["--strict", "--target", "es2022", "--module", "nodenext", "--moduleResolution", "nodenext", "--types", "node", "main.ts"];
  if (run(join(folder, "node_modules/.bin/tsc"), tscArgs, { cwd: folder }) !== 0) {
    throw new Error("the README's program does not compile against the SDK (errors above)");
  }
  console.error(`== node main.js (API_URL=${apiUrl})`);
  status = run(process.execPath, ["main.js"], { cwd: folder, env: { ...process.env, API_URL: apiUrl }, timeout: 60_000 });
  console.error(status === 0 ? "the README's TypeScript program ran" : `the README's TypeScript program failed (${status})`);
} finally {
  rmSync(folder, { recursive: true, force: true });
  rmSync(packed, { recursive: true, force: true });
}
process.exit(status);
