/**
 * The chaos and fault suite (`npm run test:chaos`): real Temporal dev server, real worker processes, faults injected.
 * Its files are *.chaos.ts, so the main suite (`npm test`, **\/*.test.ts) does not run them. Run in band: the
 * scenarios start and kill processes and must not compete for the CPU. The table reporter prints what the scenarios
 * recorded (test/chaos/table.ts) when the run ends.
 *
 *   CHAOS_ONLY=crash,faults,bad-input,storage,load   files to run (default all)
 *   CHAOS_STAGES=generate,verify,filter,finetune,evaluate,restart,repro   crash.chaos.ts scenarios
 *   CHAOS_FAULTS=rate_limit,server_error,slow,hang,reset,truncated_json,fewer_choices,slower_than_heartbeat,down
 *   CHAOS_SLOW=1          wait for the final error of a teacher that is down for good (~6 min)
 *   CHAOS_LOAD_N=100000   prompts of the load run (default 100,000, ~3 min on two cores)
 *   CHAOS_KEEP=1          keep each stack's temp dir (logs, artifacts, SQLite)
 *   DISTILLERY_CHAOS_TABLE=file   also write the table to a file (a CI artifact)
 */
const path = require('node:path');

const only = (process.env.CHAOS_ONLY || '').split(',').filter(Boolean);

module.exports = {
  rootDir: path.join(__dirname, '..', '..'),
  preset: 'ts-jest',
  testEnvironment: 'node',
  roots: ['<rootDir>/test/chaos'],
  testMatch: only.length ? only.map((o) => `**/${o}*.chaos.ts`) : ['**/*.chaos.ts'],
  modulePathIgnorePatterns: ['<rootDir>/dist'],
  transform: { '^.+\\.ts$': ['ts-jest', { diagnostics: false }] },
  testTimeout: 1_800_000,
  verbose: true,
  reporters: ['default', '<rootDir>/test/chaos/table-reporter.js', '<rootDir>/test/helpers/skip-reporter.js'],
};
