/**
 * The report activity: from a finished run's summary and artifacts, `<runDir>/report/report.{json,md,html}`, each
 * written atomically. Safe to retry (it only reads the run's artifacts and rewrites its own three files), cheap (one
 * streaming pass over each artifact), CPU queue.
 */
import * as path from 'node:path';
import type { ArtifactRef } from '../../schemas/artifact';
import { writeJsonAtomic, writeTextAtomic } from '../artifacts/store';
import { collectReport, type ReportSummary } from './collect';
import { renderHtml, renderMarkdown, reportJson } from './render';

export interface WriteReportInput {
  runDir: string;
  /** The workflow's RunSummary (or any object with its counts / evaluation / fineTune / artifacts). */
  summary: ReportSummary;
  /** Fixes the timestamp printed in the report (tests; a replayed workflow may pass workflow time). */
  generatedAt?: string;
}

export interface WriteReportResult {
  json: ArtifactRef;
  md: ArtifactRef;
  html: ArtifactRef;
}

export async function writeReport(input: WriteReportInput): Promise<WriteReportResult> {
  const data = await collectReport(input);
  const dir = path.join(input.runDir, 'report');
  const json = await writeJsonAtomic(path.join(dir, 'report.json'), reportJson(data));
  const md = await writeTextAtomic(path.join(dir, 'report.md'), renderMarkdown(data));
  const html = await writeTextAtomic(path.join(dir, 'report.html'), renderHtml(data));
  return { json, md, html };
}

export type { ReportSummary } from './collect';
