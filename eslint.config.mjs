import eslint from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["dist/", "node_modules/", "test/controlplane/"] },
  eslint.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      "@typescript-eslint/no-explicit-any": "error",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_" }],
      "@typescript-eslint/explicit-module-boundary-types": "error",
      "no-console": ["error", { allow: ["error"] }],
    },
  },
  {
    // The launchers: plain CommonJS that loads the compiled code (kubectl finds plugins by their extensionless name).
    files: ["bin/kubectl-*"],
    languageOptions: { sourceType: "commonjs", globals: { require: "readonly" } },
    rules: { "@typescript-eslint/no-require-imports": "off" },
  },
  {
    files: ["test/**", "bench/**", "scripts/**"],
    rules: {
      "@typescript-eslint/explicit-module-boundary-types": "off",
      "no-console": "off",
      "@typescript-eslint/no-unused-expressions": "off",
    },
  },
);
