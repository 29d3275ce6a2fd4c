/** Tests run against compiled workers (dist/) for integration, and ts-jest for the rest. */
module.exports = {
  preset: 'ts-jest',
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  modulePathIgnorePatterns: ['<rootDir>/dist'],
  transform: { '^.+\\.ts$': 'ts-jest' },
  testTimeout: 600000,
};
