/**
 * A Storage is the mutable cell that tensors (a base and its views) share. It points at an
 * immutable DeviceBuffer; an in-place op writes a new buffer and swaps it in, bumping `version`
 * so autograd can tell a value it saved was overwritten.
 */
import type { DeviceBuffer } from '../backend/gpujs-backend';
import type { DeviceName } from '../backend/device';

let storagesMade = 0;

/** The serial the next storage will get: storages with a serial at least this were made after the call. */
export function storageSerial(): number {
  return storagesMade;
}

export class Storage {
  /** creation order (backward tells a gradient's fresh memory from memory made before it) */
  readonly serial = storagesMade++;
  version = 0;
  /** tensors (bases and views) currently holding this storage */
  private holders = 0;

  constructor(private buf: DeviceBuffer) {
    buf.retain();
  }

  get buffer(): DeviceBuffer {
    return this.buf;
  }

  get device(): DeviceName {
    return this.buf.backend.device;
  }

  get size(): number {
    return this.buf.size;
  }

  get released(): boolean {
    return this.buf.handle === null;
  }

  /** In-place write: take `next` as the new contents. */
  swap(next: DeviceBuffer): void {
    if (next.size !== this.buf.size) throw new Error(`internal: storage swap of ${this.buf.size} elements with ${next.size}`);
    next.retain();
    this.buf.release();
    this.buf = next;
    this.version++;
  }

  hold(): void {
    this.holders++;
  }

  drop(): void {
    if (--this.holders === 0) this.buf.release();
  }
}
