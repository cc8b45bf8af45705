// `npm test` (suite "sdk") and `npm run test:browser` (suite "browser").
//
// 1. Generates the client's types from openapi.yaml and compiles the client and the
//    suites with `tsc` (strict): a contract change that breaks clients fails here.
// 2. Uses the service at API_URL, or starts `api` on a fresh database (SQLite, or
//    CONTRACT_DATABASE_URL) and stops it afterwards.
// 3. Checks that the service serves the contract the client was generated from: when it
//    does not, compiles the client against the served contract too, to show what breaks.
// 4. Runs the suite with node's test runner (with CONTRACT_SECRET_KEY, the service's
//    signing key, when this script started it).

import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

import {
  generate,
  packageDir,
  repoRoot,
  run,
  runAsync,
  specPath,
  startServer,
  typesOf,
  UPDATE_SPEC,
} from "./lib.mjs";

const suites = {
  sdk: {
    files: [
      "build/test/sdk.test.js",
      "build/test/sessions.test.js",
      "build/test/paging.test.js",
      "build/test/edits.test.js",
      "build/test/events.test.js",
    ],
    timeout: 300_000,
  },
  browser: { files: ["build/test/docs.browser.js"], timeout: 300_000 },
};
const suiteName = process.argv[2] ?? "sdk";
const suite = suites[/** @type {keyof typeof suites} */ (suiteName)];
if (!suite) {
  console.error(`unknown suite ${suiteName}; one of ${Object.keys(suites).join(", ")}`);
  process.exit(2);
}

const tsc = join(packageDir, "node_modules/.bin/tsc");

function fail(/** @type {string} */ message) {
  console.error(`\n${message}\n`);
  process.exit(1);
}

// 1. Types from openapi.yaml, then the strict compile.
const committedTypes = await generate();
rmSync(join(packageDir, "build"), { recursive: true, force: true });
if (run(tsc, ["-p", "tsconfig.json"], { cwd: packageDir }) !== 0) {
  fail(
    "The TypeScript client and suites do not compile against openapi.yaml (errors above).\n" +
      "The types in src/generated/ were just regenerated from openapi.yaml (`npm run generate`).\n" +
      "If the contract changed on purpose, update the TypeScript code that tsc names; a\n" +
      "client generated from the new openapi.yaml breaks the same way.",
  );
}

// 2. The service under test.
let server;
let baseUrl = process.env.API_URL?.replace(/\/+$/, "");
if (!baseUrl) {
  server = await startServer(serverOptions());
  baseUrl = server.url;
}

let status = 1;
try {
  // 3. Does the service serve the contract the client was generated from?
  const servedTypes = await typesOf(new URL(`${baseUrl}/openapi.json`));
  if (servedTypes !== committedTypes) {
    reportDrift(committedTypes, servedTypes);
  } else {
    // 4. The suite.
    status = await runAsync(
      process.execPath,
      ["--test", "--test-reporter=spec", `--test-timeout=${suite.timeout}`, ...suite.files],
      {
        cwd: packageDir,
        env: {
          ...process.env,
          API_URL: baseUrl,
          // The service's signing key, when this script started it (for expired tokens).
          ...(server ? { CONTRACT_SECRET_KEY: server.secretKey } : {}),
        },
      },
    );
  }
} finally {
  await server?.stop();
}
process.exit(status);

/**
 * Where the browser suite's server must listen: Swagger UI's Authorize posts to the
 * OAuth2 `tokenUrl`, so when that is absolute the server has to be there.
 */
function serverOptions() {
  if (suiteName !== "browser") return {};
  const tokenUrl = /tokenUrl:\s*['"]?([^\s'"]+)/.exec(readFileSync(specPath, "utf8"))?.[1];
  if (!tokenUrl || tokenUrl.startsWith("/")) return {};
  const { hostname, port } = new URL(tokenUrl);
  console.error(`the spec's tokenUrl is ${tokenUrl}: the service must listen there for Authorize to work`);
  return { host: hostname, port: Number(port || 80) };
}

/**
 * @param {string} committed
 * @param {string} served
 */
function reportDrift(committed, served) {
  const a = committed.split("\n");
  const b = served.split("\n");
  let first = 0;
  while (first < a.length && first < b.length && a[first] === b[first]) first++;
  console.error(`\nThe service at ${baseUrl} serves a different contract from openapi.yaml.`);
  console.error(`The generated types first differ at line ${first + 1} of src/generated/openapi.ts:`);
  for (let i = Math.max(0, first - 3); i < first + 6; i++) {
    if (i < a.length && a[i] !== b[i]) console.error(`  - ${a[i]}`);
    if (i < b.length && a[i] !== b[i]) console.error(`  + ${b[i]}`);
    if (a[i] === b[i] && i < a.length) console.error(`    ${a[i]}`);
  }

  // Compile the same client and suites against the served contract.
  const dir = join(packageDir, ".served-contract");
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  cpSync(join(packageDir, "src"), join(dir, "src"), { recursive: true });
  cpSync(join(packageDir, "test"), join(dir, "test"), { recursive: true });
  writeFileSync(join(dir, "src/generated/openapi.ts"), served);
  writeFileSync(
    join(dir, "tsconfig.json"),
    JSON.stringify({ extends: "../tsconfig.json", compilerOptions: { noEmit: true, rootDir: "." }, include: ["src", "test"] }),
  );
  console.error("\nCompiling the client against the served contract:");
  const compiled = run(tsc, ["-p", "tsconfig.json"], { cwd: dir }) === 0;
  console.error(
    "\n" +
    (compiled
      ? "The client still compiles against the served contract, but it is not openapi.yaml.\n"
      : "The TypeScript client does not compile against the contract the service serves (errors above).\n") +
      "Regenerate the contract and the client's types, then fix what tsc reports:\n" +
      `  (cd ${repoRoot} && ${UPDATE_SPEC})   # rewrites openapi.yaml from the service\n` +
      "  npm run generate                          # rewrites src/generated/ from openapi.yaml\n",
  );
}
