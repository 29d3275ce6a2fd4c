import * as path from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import { failureConverterPath } from '../../infra/codec/aes-gcm-codec';

/**
 * The workflow code bundled with one source text changed in the files `file` matches (replace-text-loader.js fails
 * the bundle when the text is not there): "tomorrow's" or "yesterday's" code, to replay recorded histories against.
 */
export async function bundleWithReplacedText(file: RegExp, from: string, to: string): Promise<string> {
  const { code } = await bundleWorkflowCode({
    workflowsPath: require.resolve('../../workflows'),
    failureConverterPath,
    logger: { info() {}, warn() {}, error: console.error, debug() {}, trace() {}, log() {} },
    webpackConfigHook: (config) => {
      config.module!.rules!.unshift({
        test: file,
        enforce: 'pre',
        use: [{ loader: path.join(__dirname, 'replace-text-loader.js'), options: { from, to } }],
      });
      return config;
    },
  });
  return code;
}
