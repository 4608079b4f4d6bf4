// @ts-check
import eslint from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'src/generated/', 'node_modules/', '.tmp/', 'dist-*/'] },
  eslint.configs.recommended,
  tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // type-graphql reads a resolver's arguments from its decorated parameters, so a parameter can exist only to
      // declare a schema argument; `_` marks it, as tsc's noUnusedParameters accepts. `{ secret: _, ...rest }` omits a key.
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_', ignoreRestSiblings: true },
      ],
      // Adapters implement async ports over synchronous drivers (better-sqlite3, in-memory maps), and Apollo plugin
      // hooks are typed as returning promises: there `async` without `await` is what turns a throw into the rejection
      // the port contract promises, so the rule would ask for worse code.
      '@typescript-eslint/require-await': 'off',
      // The parsers strip control characters from extracted text on purpose; every hit of this rule is such a class.
      'no-control-regex': 'off',
      // Rejections here forward a caught error or an AbortSignal's reason unchanged (typed unknown / any); the rule
      // still reports rejecting with a literal.
      '@typescript-eslint/prefer-promise-reject-errors': ['error', { allowThrowingAny: true, allowThrowingUnknown: true }],
      // node:test's test/describe/it return promises that the runner itself awaits.
      '@typescript-eslint/no-floating-promises': [
        'error',
        { allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['test', 'describe', 'it', 'suite'] }] },
      ],
    },
  },
  {
    // Tests and benchmarks read GraphQL responses as untyped JSON (`res.body.data.x`) and assert on the values, which
    // is where a wrong shape fails; typing every response would add nothing the assertions do not already check.
    files: ['test/**/*.ts', 'bench/**/*.ts'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      // Fixtures hand out `{ store, close }` bags of closures declared with method syntax, and tests assert that an
      // optional port method is absent (`assert.equal(store.upsertDocuments, undefined)`); neither uses `this`.
      '@typescript-eslint/unbound-method': 'off',
    },
  },
  { files: ['**/*.mjs'], extends: [tseslint.configs.disableTypeChecked] },
);
