/**
 * Re-pointing a tensor object at other data while keeping its identity — what Module.to(device) and
 * lazy-parameter materialisation need, so optimizers and user references keep working.
 */
import { Tensor } from './tensor';

type Mutable = { -readonly [K in 'storage' | 'shape' | 'strides' | 'offset']: Tensor[K] };

export function rebind(target: Tensor, source: Tensor): void {
  const src = source.contiguous();
  src.storage.hold();
  target.storage.drop();
  const m = target as unknown as Mutable;
  m.storage = src.storage;
  m.shape = [...src.shape];
  m.strides = [...src.strides];
  m.offset = src.offset;
}
