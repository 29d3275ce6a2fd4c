import { bundleWorkflowCode } from '@temporalio/worker';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { projectRoot } from '../infra/paths';
import { failureConverterPath } from '../infra/codec/aes-gcm-codec';

/** Bundles the workflow code once at build time, so workers start in a second instead of running webpack each time. */
export const workflowBundlePath = path.join(projectRoot, 'dist', 'workflow-bundle.js');

async function main(): Promise<void> {
  const { code } = await bundleWorkflowCode({
    workflowsPath: require.resolve('../workflows'),
    failureConverterPath,
    logger: { info() {}, warn: console.warn, error: console.error, debug() {}, trace() {}, log() {} },
  });
  await fs.writeFile(workflowBundlePath, code);
  console.log(
    `workflow bundle: ${path.relative(process.cwd(), workflowBundlePath)} (${(code.length / 1024).toFixed(0)} KiB)`,
  );
}

if (require.main === module) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
