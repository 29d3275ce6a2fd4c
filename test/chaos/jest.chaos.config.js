/**
 * The chaos and fault suite (`npm run test:chaos`): real Temporal dev server, real worker processes, faults injected.
 * Its files are *.chaos.ts, so the main suite (`npm test`, **\/*.test.ts) does not run them. Run in band: the
 * scenarios start and kill processes and must not compete for the CPU. CHAOS_ONLY=crash,faults,… picks files.
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
  reporters: ['default', '<rootDir>/test/chaos/table-reporter.js'],
};
