// `npm test` (suite "sdk") and `npm run test:browser` (suite "browser").
//
// 1. Installs the SDK from its packed tarball (sdk/typescript, `npm pack`), as an app does,
//    and compiles the suites against it with `tsc` (strict). The browser suite also bundles
//    the installed SDK for a browser with esbuild, as a front end's build would.
// 2. Uses the service at API_URL, or starts `api` on a fresh database (SQLite, or
//    CONTRACT_DATABASE_URL) and stops it afterwards.
// 3. Checks that the service serves the contract the SDK's types were generated from.
// 4. Runs the suite with node's test runner (with CONTRACT_SECRET_KEY, the service's
//    signing key, and CONTRACT_API_BIN and CONTRACT_SERVER_DATABASE_URL, for `api admin`,
//    when this script started it).

import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createConnection, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { build } from "esbuild";

import { firstDifference, typesOf } from "../../../sdk/typescript/scripts/generate.mjs";
import { installSdk, packageDir, repoRoot, run, runAsync, specPath, startServer, UPDATE_SPEC } from "./lib.mjs";

const suites = {
  sdk: {
    files: [
      "build/test/sdk.test.js",
      "build/test/accounts.test.js",
      "build/test/client.test.js",
      "build/test/sessions.test.js",
      "build/test/paging.test.js",
      "build/test/edits.test.js",
      "build/test/events.test.js",
      "build/test/moderation.test.js",
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

function fail(/** @type {string} */ message) {
  console.error(`\n${message}\n`);
  process.exit(1);
}

// 1. The SDK as installed, then the strict compile.
installSdk();
rmSync(join(packageDir, "build"), { recursive: true, force: true });
if (run(join(packageDir, "node_modules/.bin/tsc"), ["-p", "tsconfig.json"], { cwd: packageDir }) !== 0) {
  fail(
    "The suites do not compile against the SDK (errors above). When the contract changed on\n" +
      "purpose, regenerate the SDK's types (`npm run generate` in sdk/typescript) and update\n" +
      "the code that tsc names: an app using the SDK breaks the same way.",
  );
}
const browserBundle = join(packageDir, "build/social-api-client.browser.js");
if (suiteName === "browser") {
  // What a front end's bundler makes of the installed package: one script, `SocialApi` global.
  await build({
    stdin: { contents: 'export * from "@social-api/client";', resolveDir: packageDir, loader: "js" },
    bundle: true,
    format: "iife",
    globalName: "SocialApi",
    platform: "browser",
    target: "chrome120",
    outfile: browserBundle,
    logLevel: "warning",
  });
}

// 2. The service under test; when this script starts it (suite "sdk"), it mails through a
// real SMTP server, aiosmtpd (TEST_PYTHON, default python3), into a Maildir the suite reads.
let server;
let mail;
let baseUrl = process.env.API_URL?.replace(/\/+$/, "");
if (!baseUrl) {
  if (suiteName === "sdk") mail = await startMailServer();
  server = await startServer({ ...serverOptions(), env: mail?.env ?? {} });
  baseUrl = server.url;
}

let status = 1;
try {
  // 3. Does the service serve the contract the SDK's types came from?
  const installedTypes = readFileSync(
    join(packageDir, "node_modules/@social-api/client/src/generated/openapi.ts"),
    "utf8",
  );
  const servedTypes = await typesOf(new URL(`${baseUrl}/openapi.json`));
  if (servedTypes !== installedTypes) {
    console.error(
      `\nThe service at ${baseUrl} serves a different contract from the one the SDK was generated from.\n` +
        `The SDK's types (src/generated/openapi.ts) and the served spec's, ${firstDifference(installedTypes, servedTypes)}\n\n` +
        "Regenerate the contract and the SDK's types, then fix what tsc reports:\n" +
        `  (cd ${repoRoot} && ${UPDATE_SPEC})   # rewrites openapi.yaml from the service\n` +
        `  (cd ${repoRoot}/sdk/typescript && npm run generate)   # rewrites the SDK's types from openapi.yaml\n`,
    );
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
          SDK_BROWSER_BUNDLE: browserBundle,
          // The service's signing key, when this script started it (for expired tokens).
          ...(server
            ? { CONTRACT_SECRET_KEY: server.secretKey, CONTRACT_API_BIN: server.binary, CONTRACT_SERVER_DATABASE_URL: server.databaseUrl }
            : {}),
          ...(mail ? { CONTRACT_MAILDIR: mail.maildir, CONTRACT_PUBLIC_URL: mail.publicUrl } : {}),
        },
      },
    );
  }
} finally {
  await server?.stop();
  mail?.stop();
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

/** aiosmtpd with its Maildir handler on a free port, and the settings that send mail to it. */
async function startMailServer() {
  const port = await new Promise((found) => {
    const probe = createServer().listen(0, "127.0.0.1", () => {
      const { port } = /** @type {import("node:net").AddressInfo} */ (probe.address());
      probe.close(() => found(port));
    });
  });
  const maildir = join(mkdtempSync(join(tmpdir(), "social-contract-mail-")), "maildir");
  const python = process.env.TEST_PYTHON || "python3";
  const child = spawn(python, ["-m", "aiosmtpd", "-n", "-l", `127.0.0.1:${port}`, "-c", "aiosmtpd.handlers.Mailbox", maildir], {
    stdio: ["ignore", "ignore", "inherit"],
  });
  const deadline = Date.now() + 20_000;
  for (;;) {
    const open = await new Promise((done) => {
      const socket = createConnection(port);
      socket.once("connect", () => socket.end(() => done(true)));
      socket.once("error", () => done(false));
    });
    if (open) break;
    if (Date.now() > deadline || child.exitCode !== null) fail(`${python} -m aiosmtpd did not start (pip install aiosmtpd)`);
    await new Promise((tick) => setTimeout(tick, 100));
  }
  const publicUrl = "http://localhost:5173";
  return {
    maildir,
    publicUrl,
    env: { SMTP_URL: `smtp://127.0.0.1:${port}`, MAIL_FROM: "Social API <noreply@example.org>", PUBLIC_URL: publicUrl },
    stop: () => child.kill(),
  };
}
