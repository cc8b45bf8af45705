// `npm run install-sdk`: packs sdk/typescript and installs the tarball here, as an app would.
import { installSdk } from "./lib.mjs";

console.error(`installed ${installSdk()}`);
