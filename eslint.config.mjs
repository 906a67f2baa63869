import js from "@eslint/js"
import tseslint from "typescript-eslint"

export default tseslint.config(
  {
    ignores: [
      "**/dist/**",
      "**/node_modules/**",
      ".tmp/**",
      "scripts/consumer/**",
      "**/*.js",
      "**/*.mjs",
      "**/*.cjs",
      "**/*.py"
    ]
  },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname }
    },
    rules: {
      "@typescript-eslint/no-floating-promises": "error",
      "@typescript-eslint/no-misused-promises": "error",
      "@typescript-eslint/no-explicit-any": "error",
      "@typescript-eslint/array-type": ["error", { default: "generic", readonly: "generic" }],
      "@typescript-eslint/consistent-type-imports": "error",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "@typescript-eslint/require-yield": "off",
      "require-yield": "off",
      "no-console": "error",
      // A plain it()/test() whose body returns an Effect passes without running it.
      "no-restricted-syntax": [
        "error",
        {
          selector:
            "CallExpression[callee.type='Identifier'][callee.name=/^(it|test)$/] > ArrowFunctionExpression > CallExpression[callee.object.name='Effect']",
          message: "Use it.effect / it.scoped / it.live: a plain it() returning an Effect never runs it."
        }
      ]
    }
  },
  {
    files: ["packages/*/test/**", "bench/**", "examples/**", "*.ts"],
    rules: {
      "no-console": "off",
      "@typescript-eslint/no-unsafe-assignment": "off",
      "@typescript-eslint/no-unsafe-member-access": "off",
      "@typescript-eslint/no-unsafe-argument": "off",
      "@typescript-eslint/no-unsafe-call": "off",
      "@typescript-eslint/no-unsafe-return": "off"
    }
  }
)
