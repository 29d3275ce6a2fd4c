/** Tests run against compiled workers (dist/) for integration, and ts-jest for the rest. */
module.exports = {
  preset: 'ts-jest',
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  modulePathIgnorePatterns: ['<rootDir>/dist'],
  transform: { '^.+\\.ts$': 'ts-jest' },
  testTimeout: 600000,
  // The skip reporter counts tests that did not run (and why) and fails a CI=true run that skipped any.
  reporters: ['default', '<rootDir>/test/helpers/skip-reporter.js'],
};
