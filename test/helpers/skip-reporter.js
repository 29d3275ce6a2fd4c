/**
 * Jest reporter of both suites: counts the tests that did not run (skipped, todo) and says why where a test was
 * skipped for a missing prerequisite (test/helpers/prerequisites.ts records those), then prints one closing line,
 * `jest: N passed, N failed, N skipped`. Under CI=true any skipped test fails the run: CI installs every prerequisite
 * and runs every test, so a skip there hides a test that did not run.
 */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const underCi = () => /^(1|true|yes)$/i.test(process.env.CI || '');

class SkipReporter {
  constructor() {
    if (!process.env.DISTILLERY_SKIPS)
      process.env.DISTILLERY_SKIPS = fs.mkdtempSync(path.join(os.tmpdir(), 'distillery-skips-'));
    this.dir = process.env.DISTILLERY_SKIPS;
    this.error = undefined;
  }

  onRunComplete(_contexts, results) {
    const skipped = [];
    for (const file of results.testResults) {
      for (const t of file.testResults) {
        if (t.status === 'pending' || t.status === 'skipped' || t.status === 'todo' || t.status === 'disabled')
          skipped.push(`${path.relative(process.cwd(), file.testFilePath)}: ${t.fullName}`);
      }
    }
    const reasons = fs.existsSync(this.dir)
      ? fs
          .readdirSync(this.dir)
          .filter((f) => f.startsWith('skip-'))
          .map((f) => JSON.parse(fs.readFileSync(path.join(this.dir, f), 'utf8')))
      : [];
    const lines = [''];
    if (skipped.length) {
      lines.push(`skipped tests (${skipped.length}):`, ...skipped.map((s) => `  - ${s}`));
      const seen = new Set();
      for (const r of reasons) {
        const key = `${r.what}: ${r.problem}`;
        if (seen.has(key)) continue;
        seen.add(key);
        lines.push(`  missing prerequisite: ${key}${r.file ? ` (${path.relative(process.cwd(), r.file)})` : ''}`);
      }
    }
    const skippedCount = results.numPendingTests + results.numTodoTests;
    lines.push(`jest: ${results.numPassedTests} passed, ${results.numFailedTests} failed, ${skippedCount} skipped`);
    process.stdout.write(lines.join('\n') + '\n');
    if (underCi() && skippedCount > 0) {
      this.error = new Error(
        `CI=true: ${skippedCount} test(s) skipped; every test must run in CI${reasons.length ? ` (missing prerequisites: ${[...new Set(reasons.map((r) => r.what))].join(', ')})` : ''}`,
      );
      process.stderr.write(`${this.error.message}\n`);
    }
  }

  getLastError() {
    return this.error;
  }
}

module.exports = SkipReporter;
