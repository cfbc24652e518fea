/** loadStateDict: validate everything first, then copy — all or nothing. */
import { Tensor } from '../tensor/tensor';
import { fmtShape, sameShape } from '../tensor/shape';
import { noGrad } from '../autograd/grad-mode';
import type { Module } from './module';
import { isUninitialized } from './parameter';

export interface LoadResult {
  missingKeys: string[];
  unexpectedKeys: string[];
}

export function loadStateDictInto(module: Module, sd: Record<string, Tensor>, strict: boolean): LoadResult {
  if (!sd || typeof sd !== 'object') throw new Error(`loadStateDict: expected an object of tensors, got ${sd === null ? 'null' : typeof sd}`);
  const own = module.stateDict();
  // the live tensors (stateDict returns detached views of them); non-persistent buffers are not state
  const live = new Map<string, Tensor>();
  for (const [prefix, m] of module.namedModulesAll()) {
    for (const [name, t] of [...m.namedParameters({ recurse: false }), ...m.namedBuffers({ recurse: false })]) {
      const key = prefix ? `${prefix}.${name}` : name;
      if (key in own) live.set(key, t);
    }
  }
  const problems: string[] = [];
  const missingKeys: string[] = [];
  const unexpectedKeys = Object.keys(sd).filter((k) => !(k in own));
  // a tied tensor saved once (safetensors drops aliases) is not missing if its twin is present
  const present = new Set(Object.keys(sd).filter((k) => k in own).map((k) => live.get(k)));
  for (const key of Object.keys(own)) {
    if (key in sd) continue;
    if (present.has(live.get(key))) continue;
    missingKeys.push(key);
  }
  const copies: [Tensor, Tensor][] = [];
  for (const [key, target] of live) {
    if (!(key in sd)) continue;
    const src = sd[key];
    if (!(src instanceof Tensor)) {
      problems.push(`'${key}': expected a Tensor, got ${src === null ? 'null' : typeof src}`);
    } else if (isUninitialized(src)) {
      problems.push(`'${key}': the checkpoint holds an uninitialized lazy parameter (save the model after its first forward pass)`);
    } else if (isUninitialized(target)) {
      problems.push(`'${key}': cannot load into an uninitialized lazy parameter; run one forward pass first so the layer knows its input size`);
    } else if (!sameShape(src.shape, target.shape)) {
      problems.push(`size mismatch for '${key}': copying a param with shape ${fmtShape(src.shape)} from checkpoint, the shape in current model is ${fmtShape(target.shape)}`);
    } else {
      copies.push([target, src]);
    }
  }
  if (strict) {
    // PyTorch's order: missing keys, unexpected keys, then the per-tensor problems
    if (unexpectedKeys.length) problems.unshift(`unexpected keys: ${unexpectedKeys.map((k) => `'${k}'`).join(', ')}`);
    if (missingKeys.length) problems.unshift(`missing keys: ${missingKeys.map((k) => `'${k}'`).join(', ')}`);
  }
  if (problems.length) {
    throw new Error(`Error(s) in loading state dict for ${module.constructor.name} (nothing was changed):\n  ${problems.join('\n  ')}`);
  }
  noGrad(() => copies.forEach(([t, s]) => t.copy_(s)));
  return { missingKeys, unexpectedKeys };
}
