/**
 * The data types of a captured graph (values, steps, events, templates of hook arguments): shared by the
 * capture (capture.ts, which re-exports them), its hook interception (capture-hooks.ts) and the replay, in
 * a leaf so that none of them imports another back for a type.
 */
import type { DeviceBuffer, KernelSpec } from '../backend/buffer';
import type { StridedRef } from '../backend/kernel-builder';
import type { Module } from '../nn/module';
import type { HookKind } from '../nn/hooks';

export type ValueKind = 'input' | 'param' | 'const' | 'random' | 'step' | 'grad';

export interface Value {
  id: number;
  kind: ValueKind;
  size: number;
  /** input / param position */
  index?: number;
  /** the buffer seen at capture (kept alive for constants and random values) */
  buffer: DeviceBuffer;
  /** random values: draws fresh contents */
  redraw?: () => Float32Array;
}

export interface MapMeta {
  kind: 'map';
  op: string;
  inputs: (StridedRef | number)[];
  expr: (xs: string[], kb: any) => string;
  outShape: readonly number[];
}

export interface Step {
  id: number;
  spec: KernelSpec;
  /** value per spec.inputs position */
  inputs: number[];
  out: number;
  meta?: MapMeta | ({ kind: 'matmul' } & Record<string, any>);
}

/** A tensor view of a value. */
export interface ValueView {
  value: number;
  shape: number[];
  strides: number[];
  offset: number;
}

/** A value handed to a hook, as a replay rebuilds it. */
export type Template =
  | { t: 'tensor'; view: ValueView; requiresGrad: boolean; /** index into Graph.hookGrads */ grad?: number }
  | { t: 'literal'; value: unknown }
  | { t: 'array'; items: Template[] }
  | { t: 'object'; entries: [string, Template][] };

/** Things a replay does between forward steps, at the point (`at` steps done) where the capture saw them. */
export type GraphEvent =
  /** draw a random value afresh */
  | { kind: 'random'; at: number; value: number }
  /** an in-place write of a parameter/buffer by the forward (BatchNorm's running stats): swap it in */
  | { kind: 'write'; at: number; param: number; value: number }
  /** call a forward (pre-)hook of an inner module with the values it was handed */
  | { kind: 'hook'; at: number; hook: HookKind; module: Module; path: string; fn: (...a: any[]) => unknown; args: Template; output?: Template };

/** A backward program from a placeholder gradient of `seed`'s tensor down to the inputs and parameters. */
export interface BackwardCapture {
  steps: Step[];
  gradSeed: number;
  /** per input then per param: the gradient view, or null where none flows */
  grads: (ValueView | null)[];
}

export interface Graph {
  values: Value[];
  forward: Step[];
  backward: Step[] | null;
  output: ValueView;
  /** random draws, parameter writes and hook calls, in the order the forward made them */
  events: GraphEvent[];
  /** the backward's output gradient placeholder */
  gradSeed: number | null;
  /** per input then per param: the gradient view, or null where none flows */
  grads: (ValueView | null)[] | null;
  /** backward programs of tensors handed to hooks that require grad (a hook may build a loss from them) */
  hookGrads: BackwardCapture[];
  /** why there is no backward program (autograd was on) */
  noBackward?: string;
  /** graph rewrites applied before fusion (compile.ts) */
  rewrites?: string[];
}
