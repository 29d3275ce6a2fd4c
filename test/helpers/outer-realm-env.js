/**
 * Jest runs tests in a separate realm, so its typed-array classes differ from Node's own: onnxruntime-node's
 * native code then rejects our tensors ("data must be type of Float32Array"). Tests that run ONNX models use
 * this environment (docblock `@jest-environment ./test/helpers/outer-realm-env.js`), which shares Node's own.
 */
const { TestEnvironment } = require('jest-environment-node');

const SHARED = [
  'ArrayBuffer',
  'SharedArrayBuffer',
  'DataView',
  'Float32Array',
  'Float64Array',
  'Int8Array',
  'Int16Array',
  'Int32Array',
  'Uint8Array',
  'Uint8ClampedArray',
  'Uint16Array',
  'Uint32Array',
  'BigInt64Array',
  'BigUint64Array',
];

class OuterRealmEnvironment extends TestEnvironment {
  constructor(config, context) {
    super(config, context);
    for (const name of SHARED) this.global[name] = globalThis[name];
  }
}

module.exports = OuterRealmEnvironment;
