/**
 * The comparisons the bench reports, from its result rows: per case, tsnn against PyTorch at the same thread
 * count (1 thread is the headline: on a 2-vCPU machine whose second core is often busy, 2-thread timings swing
 * 5-40x and a ratio against them is noise), and tsnn single-threaded against TF.js-wasm (single-threaded).
 * Shared by bench/run.ts (printing) and bench/update-readme.ts (the README table).
 */
export interface ResultRow {
  case: string;
  impl: string;
  device: string;
  mode: string;
  threads?: number;
  variant?: string;
  ms: number | null;
  rounds: number;
  note?: string;
}

export interface Side {
  ms: number;
  /** which row: mode, conv variant */
  label: string;
}

export interface Pair {
  case: string;
  threads: number;
  tsnn: Side | null;
  pytorch: Side | null;
  /** tsnn ms / PyTorch ms (below 1: tsnn faster); null when either side is missing */
  ratio: number | null;
}

export interface CasePairs {
  case: string;
  title: string;
  /** same-thread pairs, 1 thread first */
  torch: Pair[];
  tfjs: { tsnn: Side | null; tfjs: Side | null; ratio: number | null };
}

const label = (r: ResultRow) => [r.mode !== '-' ? r.mode : '', r.variant ?? ''].filter(Boolean).join(', ');

/** tsnn's fastest row on the given device at the given thread count (eager or compiled; either conv variant). */
function bestTsnn(rows: ResultRow[], device: string, threads: number): Side | null {
  const rs = rows.filter((r) => r.impl === 'tsnn' && r.device === device && (r.threads ?? 1) === threads && r.ms !== null);
  if (!rs.length) return null;
  const b = rs.reduce((x, y) => (y.ms! < x.ms! ? y : x));
  return { ms: b.ms!, label: label(b) };
}

function side(r: ResultRow | undefined): Side | null {
  return r && r.ms !== null ? { ms: r.ms, label: label(r) } : null;
}

const ratioOf = (a: Side | null, b: Side | null) => (a && b ? a.ms / b.ms : null);

export function casePairs(cases: { id: string; title: string }[], rows: ResultRow[], device: string, threadCounts: number[]): CasePairs[] {
  const out: CasePairs[] = [];
  for (const { id, title } of cases) {
    const rs = rows.filter((r) => r.case === id);
    if (!rs.length) continue;
    const torch = [...threadCounts]
      .sort((a, b) => a - b)
      .map((t) => {
        const tsnn = bestTsnn(rs, device, t);
        const pytorch = side(rs.find((r) => r.impl === 'pytorch-cpu' && r.threads === t));
        return { case: id, threads: t, tsnn, pytorch, ratio: ratioOf(tsnn, pytorch) };
      });
    const tsnn1 = bestTsnn(rs, device, 1);
    const tfjs = side(rs.find((r) => r.impl === 'tfjs-wasm'));
    out.push({ case: id, title, torch, tfjs: { tsnn: tsnn1, tfjs, ratio: ratioOf(tsnn1, tfjs) } });
  }
  return out;
}

export function fmtMs(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return 'n/a';
  return ms >= 100 ? ms.toFixed(0) : ms >= 10 ? ms.toFixed(1) : ms >= 1 ? ms.toFixed(2) : ms.toFixed(3);
}

export function fmtRatio(r: number | null): string {
  return r === null ? 'n/a' : `${r.toFixed(2)}x`;
}
