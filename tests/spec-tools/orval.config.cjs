// orval: types, and a function per operation over fetch, through clients/orval-fetch.ts (which
// holds the service's URL and the caller's token).
module.exports = {
  social: {
    input: { target: "../../openapi.yaml" },
    output: {
      target: "generated/orval/social.ts",
      client: "fetch",
      override: { mutator: { path: "clients/orval-fetch.ts", name: "orvalFetch" } },
    },
  },
};
