// jest + ts-jest over the CDK construct's tests and the Terraform module's (no transpile cache
// outside the tree: CI starts clean anyway).
module.exports = {
  testEnvironment: "node",
  roots: ["<rootDir>/cdk/test", "<rootDir>/terraform/test"],
  testMatch: ["**/*.test.ts"],
  transform: { "^.+\\.ts$": ["ts-jest", { tsconfig: "tsconfig.json" }] },
};
