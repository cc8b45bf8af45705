// `npm run generate`: writes src/generated/openapi.ts from ../../openapi.yaml.
import { generate, generatedPath, specPath } from "./lib.mjs";

await generate();
console.error(`wrote ${generatedPath} from ${specPath}`);
