/**
 * Runs bench/torch_bench.py (PyTorch on the CPU, as its users have it) as a subprocess: once per case and thread
 * count, so PyTorch's rounds for a case run right after tsnn's (close in time, under similar machine load) and
 * each process fixes its thread count before torch loads. The script refuses (exit 3, `error`) when PyTorch
 * calls the reference BLAS or its BLAS gives wrong products; that refusal is surfaced, never turned into ratios.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

export const PYTHON = '/usr/bin/python3';
const EXIT_REFUSED = 3;

export interface TorchInfo {
  torch: string;
  python: string;
  threads: number;
  interop_threads: number;
  mkldnn: boolean;
  cpu_capability: string | null;
  env: Record<string, string | null>;
  openblas_env: 'user' | 'inherit';
  removed_env: Record<string, string>;
  blas: { kind: string; summary: string; torch_blas_info: string | null; mapped: string[]; sgemm_from: Record<string, unknown> | null };
  matmul_check?: { case: string; mkn: number[]; worst_error_over_bound: number; ok: boolean }[];
}

export interface TorchRun {
  info: TorchInfo;
  results?: Record<string, { ms: number; min: number; rounds: number }>;
  /** set when the script refused to time PyTorch (reference BLAS, wrong products) */
  error?: string;
}

export interface TorchArgs {
  threads: number;
  cases?: string[];
  warmup?: number;
  rounds?: number;
  budget?: number;
  probe?: boolean;
  openblasEnv: 'user' | 'inherit';
}

/** Runs the script; a refusal comes back as `error`, any other failure throws. */
export function runTorch(script: string, a: TorchArgs): TorchRun {
  if (!fs.existsSync(PYTHON)) throw new Error(`${PYTHON} not found`);
  const argv = [script, '--threads', String(a.threads), '--openblas-env', a.openblasEnv];
  if (a.cases) argv.push('--cases', a.cases.join(','));
  if (a.warmup !== undefined) argv.push('--warmup', String(a.warmup));
  if (a.rounds !== undefined) argv.push('--rounds', String(a.rounds));
  if (a.budget !== undefined) argv.push('--budget', String(a.budget));
  if (a.probe) argv.push('--probe');
  const r = spawnSync(PYTHON, argv, { encoding: 'utf8', timeout: 600_000, cwd: path.dirname(script) });
  const last = (r.stdout ?? '').trim().split('\n').pop() ?? '';
  if (r.status === 0 || r.status === EXIT_REFUSED) {
    const run = JSON.parse(last) as TorchRun;
    if (r.status === EXIT_REFUSED && !run.error) run.error = 'torch_bench.py refused without a reason';
    return run;
  }
  const why = (r.stderr || r.error?.message || `exit status ${r.status}`).trim().split('\n').slice(-3).join(' | ');
  throw new Error(`torch_bench.py --threads ${a.threads} failed: ${why}`);
}

/** One line on what PyTorch ran with: version, BLAS and its kernel, oneDNN, threads, the OpenBLAS variables. */
export function describeTorch(i: TorchInfo): string {
  const removed = Object.entries(i.removed_env).map(([k, v]) => `${k}=${v}`);
  const blasEnv =
    i.openblas_env === 'user'
      ? removed.length
        ? `this machine's ${removed.join(' ')} removed for the PyTorch process (OpenBLAS picks its kernel itself, as on a user's machine)`
        : 'no OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE set'
      : `OpenBLAS variables inherited (OPENBLAS_CORETYPE=${i.env.OPENBLAS_CORETYPE ?? 'unset'}, OPENBLAS_L2_SIZE=${i.env.OPENBLAS_L2_SIZE ?? 'unset'})`;
  const check = i.matmul_check
    ? `float32 products checked against float64 (worst error ${Math.max(...i.matmul_check.map((c) => c.worst_error_over_bound)).toFixed(3)} of the rounding bound)`
    : 'products not checked';
  return `PyTorch ${i.torch} (Python ${i.python}): BLAS ${i.blas.summary}; oneDNN/MKLDNN ${i.mkldnn ? 'available' : 'not available'}; CPU capability ${i.cpu_capability ?? '?'}; ${i.threads} intra-op thread(s), ${i.interop_threads} inter-op; ${blasEnv}; ${check}`;
}
