// Jest transformer for the ESM-only files @grafana/data pulls in (d3-*'s .mjs). TypeScript
// treats a `.mjs` input as ESM whatever `module` says, so the file is transpiled as if it
// were `.js` to get CommonJS out.
const crypto = require('crypto');
const ts = require('typescript');

module.exports = {
  process(source, filename) {
    const output = ts.transpileModule(source, {
      fileName: filename.replace(/\.mjs$/, '.js'),
      compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2020, allowJs: true, esModuleInterop: true },
    });
    return { code: output.outputText };
  },
  getCacheKey(source, filename) {
    return crypto.createHash('sha1').update(ts.version).update(filename).update(source).digest('hex');
  },
};
