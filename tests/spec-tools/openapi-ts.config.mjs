// @hey-api/openapi-ts: types, and an SDK function per operation over its fetch client.
export default {
  input: "../../openapi.yaml",
  output: { path: "generated/hey-api", importFileExtension: ".js" },
  plugins: ["@hey-api/client-fetch", "@hey-api/typescript", "@hey-api/sdk"],
};
