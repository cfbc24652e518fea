/** What the browser bench's page (page.ts) is asked and answers: shared by the page and bench/browser/run-browser.ts. */
import type { CaseId } from '../cases';

export interface BrowserBenchOptions {
  cases: CaseId[];
  devices: string[] | null;
  warmup: number;
  rounds: number;
  /** ms per runner and case; slow runners get fewer rounds (at least 3) */
  budget: number;
  tfjs: boolean;
  /** a timed round repeats the op until it lasts at least this long */
  minRoundMs: number;
}

export interface BrowserBenchResult {
  case: CaseId;
  impl: 'tsnn' | 'tfjs-webgl' | 'tfjs-wasm';
  device: string;
  mode: 'eager' | 'compiled' | '-';
  /** median ms per op */
  ms: number | null;
  min?: number;
  rounds: number;
  /** ops per timed round */
  reps?: number;
  note?: string;
}

export interface BrowserBenchDoc {
  userAgent: string;
  crossOriginIsolated: boolean;
  webglRenderer: string;
  devices: { device: string; ok: boolean; why?: string; renderer?: string }[];
  tfjs: { version: string; backends: string[]; wasmSimd: boolean | null; wasmThreads: boolean | null; notes: string[] };
  results: BrowserBenchResult[];
}
