// Node environment: the integration test sends real HTTP with Node's global fetch.
// `@grafana/runtime` needs a browser, so tests replace it with jest.mock (see tests/support).
// The editor tests opt into jsdom with a docblock.
const tsJest = [
  'ts-jest',
  {
    // isolatedModules: transpile only; type errors are `npm run typecheck`'s job.
    tsconfig: { isolatedModules: true, module: 'commonjs', moduleResolution: 'node', jsx: 'react', esModuleInterop: true, target: 'ES2020' },
  },
];

const fs = require('fs');
const path = require('path');

/**
 * Dependencies of @grafana/data and @grafana/ui that ship ESM only (Node loads them
 * natively, Jest does not): every installed package marked `"type": "module"`, plus
 * `marked`, whose ESM build is a plain `.js`. They are transpiled to CommonJS, as are
 * all `.mjs` files.
 */
function esmPackages() {
  const root = path.join(__dirname, 'node_modules');
  const names = fs.existsSync(root) ? fs.readdirSync(root) : [];
  const packages = names.flatMap((name) =>
    name.startsWith('@') ? fs.readdirSync(path.join(root, name)).map((sub) => `${name}/${sub}`) : [name]
  );
  const isEsm = (name) => {
    try {
      return JSON.parse(fs.readFileSync(path.join(root, name, 'package.json'), 'utf8')).type === 'module';
    } catch {
      return false;
    }
  };
  return [...packages.filter(isEsm), 'marked'].map((name) => name.replace(/[.+]/g, '\\$&'));
}
const ESM_PACKAGES = esmPackages();

/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/tests'],
  testMatch: ['**/*.test.ts', '**/*.test.tsx'],
  moduleNameMapper: { '\\.css$': '<rootDir>/tests/support/emptyModule.js' },
  setupFiles: ['<rootDir>/tests/support/browserApis.ts'],
  transform: {
    '^.+\\.tsx?$': tsJest,
    '^.+\\.m?js$': '<rootDir>/tests/support/esmToCommonjs.js',
  },
  transformIgnorePatterns: [`/node_modules/(?!(${ESM_PACKAGES.join('|')})/)(?!.*\\.mjs$)`],
};
