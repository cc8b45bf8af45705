// Shared by the scripts: the SDK as a user installs it (its packed tarball), and running the
// `api` binary.

import { spawn, spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const packageDir = resolve(dirname(fileURLToPath(import.meta.url)), "..");
export const repoRoot = resolve(packageDir, "../..");
export const sdkDir = join(repoRoot, "sdk/typescript");
export const specPath = join(repoRoot, "openapi.yaml");

/** The command that rewrites `openapi.yaml` from the service (run at the workspace root). */
export const UPDATE_SPEC = "UPDATE_OPENAPI=1 cargo test -p api-tests --test suite openapi::";

/**
 * Packs the SDK (`npm pack` in sdk/typescript, which builds it) into `destination`; returns
 * the tarball's path. The SDK's own packages must be installed (`npm ci` there).
 * @param {string} destination
 */
export function packSdk(destination) {
  mkdirSync(destination, { recursive: true });
  const result = spawnSync("npm", ["pack", "--json", "--pack-destination", destination], {
    cwd: sdkDir,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
  });
  if (result.error) throw result.error;
  if (result.status !== 0) throw new Error("npm pack failed in sdk/typescript (is `npm ci` done there?)");
  // Lifecycle scripts (the build) may print before the JSON.
  const [packed] = JSON.parse(result.stdout.slice(result.stdout.indexOf("[")));
  return join(destination, packed.filename);
}

/**
 * Installs the SDK here from its packed tarball, as an app installs it, unless the same
 * tarball is installed already. Leaves package.json and package-lock.json as they are.
 */
export function installSdk() {
  const tarball = packSdk(join(packageDir, ".sdk"));
  const digest = createHash("sha256").update(readFileSync(tarball)).digest("hex");
  const stamp = join(packageDir, "node_modules/.sdk-tarball-sha256");
  let installed = "";
  try {
    installed = readFileSync(stamp, "utf8");
  } catch {
    // never installed
  }
  if (installed !== digest) {
    const status = run("npm", ["install", "--no-save", "--no-audit", "--no-fund", tarball], { cwd: packageDir });
    if (status !== 0) throw new Error(`npm install ${tarball} failed`);
    writeFileSync(stamp, digest);
  }
  return tarball;
}

/**
 * Runs a command, inheriting stdio; returns its exit status.
 * @param {string} command
 * @param {string[]} args
 * @param {import("node:child_process").SpawnSyncOptions} [options]
 */
export function run(command, args, options = {}) {
  const result = spawnSync(command, args, { stdio: "inherit", ...options });
  if (result.error) throw result.error;
  return result.status ?? 1;
}

/**
 * Runs a command, inheriting stdio, without blocking this process: a service started here
 * keeps draining its output pipes meanwhile (when they fill up, its logging blocks, and so
 * does it). Resolves to its exit status.
 * @param {string} command
 * @param {string[]} args
 * @param {import("node:child_process").SpawnOptions} [options]
 * @returns {Promise<number>}
 */
export function runAsync(command, args, options = {}) {
  return new Promise((done, failed) => {
    const child = spawn(command, args, { stdio: "inherit", ...options });
    child.once("error", failed);
    child.once("exit", (code) => done(code ?? 1));
  });
}

/**
 * The `api` binary: `API_BIN` when set, otherwise what `cargo build -p api` builds (a
 * no-op when it is up to date).
 */
export function apiBinary() {
  if (process.env.API_BIN) return resolve(process.env.API_BIN);
  console.error("building the api binary (cargo build -p api); set API_BIN to skip");
  const result = spawnSync(
    "cargo",
    ["build", "-p", "api", "--bin", "api", "--message-format=json-render-diagnostics"],
    { cwd: repoRoot, encoding: "utf8", stdio: ["ignore", "pipe", "inherit"], maxBuffer: 1 << 28 },
  );
  if (result.error) throw result.error;
  if (result.status !== 0) throw new Error("cargo build -p api failed");
  for (const line of result.stdout.split("\n")) {
    if (!line.startsWith("{")) continue;
    const message = JSON.parse(line);
    if (message.reason === "compiler-artifact" && message.executable && message.target?.name === "api") {
      return message.executable;
    }
  }
  throw new Error("cargo build -p api did not report the api executable");
}

/**
 * Starts the service on a database of its own and waits until it listens.
 *
 * The database is `CONTRACT_DATABASE_URL` when set (an empty PostgreSQL database, say),
 * otherwise a fresh SQLite file that is removed on stop. `port` 0 picks a free one.
 * `secretKey` is the SECRET_KEY it signs access tokens with (random, unless `env` sets
 * one): the suites use it to make tokens the service must refuse as expired.
 * @param {{ port?: number, host?: string, env?: Record<string, string> }} [options]
 * @returns {Promise<{ url: string, secretKey: string, binary: string, databaseUrl: string, stop: () => Promise<void> }>}
 */
export async function startServer({ port = 0, host = "127.0.0.1", env = {} } = {}) {
  const binary = apiBinary();
  // The service reads config.toml and .env from its working directory: give it an empty one.
  const workDir = mkdtempSync(join(tmpdir(), "social-contract-"));
  const databaseUrl =
    process.env.CONTRACT_DATABASE_URL || `sqlite://${join(workDir, "api.db")}?mode=rwc`;
  const secretKey = env.SECRET_KEY ?? randomBytes(32).toString("hex");
  const child = spawn(binary, [], {
    cwd: workDir,
    stdio: ["ignore", "pipe", "pipe"],
    env: {
      PATH: process.env.PATH ?? "",
      APP_ENV: "development",
      HOST: host,
      PORT: String(port),
      DATABASE_URL: databaseUrl,
      SECRET_KEY: secretKey,
      BCRYPT_COST: "4",
      REGISTER_MAX_PER_ADDRESS: "0",
      // The suites open streams one after another from few accounts; the cap has its own test.
      EVENT_STREAMS_PER_ACCOUNT: "1000",
      WRITES_PER_MINUTE: "0",
      LOGIN_MAX_FAILURES: "5",
      RUST_LOG: "info",
      ...env,
    },
  });
  const log = [];
  const remember = (/** @type {Buffer} */ chunk) => {
    log.push(chunk.toString());
    if (process.env.CONTRACT_SERVER_LOG === "1") process.stderr.write(chunk);
  };
  child.stderr.on("data", remember);
  const exited = new Promise((done) => child.once("exit", (code, signal) => done({ code, signal })));

  const url = await new Promise((found, failed) => {
    const timer = setTimeout(() => failed(new Error(`the service did not start within 60 s:\n${log.join("")}`)), 60_000);
    let buffered = "";
    child.stdout.on("data", (chunk) => {
      remember(chunk);
      buffered += chunk.toString();
      const match = /address=(http:\/\/[^\s]+)/.exec(buffered);
      if (match) {
        clearTimeout(timer);
        found(match[1]);
      }
    });
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      failed(new Error(`the service exited (${code ?? signal}) before listening:\n${log.join("")}`));
    });
  });
  console.error(`service under test: ${url} on ${databaseUrl.split(":")[0]}`);

  return {
    url,
    secretKey,
    // For the suites that run the binary's commands (`api admin`) on the same database.
    binary,
    databaseUrl,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
        await exited;
        clearTimeout(timer);
      }
      rmSync(workDir, { recursive: true, force: true });
    },
  };
}
