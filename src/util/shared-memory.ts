/**
 * Whether `buf` is shared memory. `SharedArrayBuffer` is not even defined in a page that is not
 * cross-origin isolated, so a bare `instanceof SharedArrayBuffer` throws a ReferenceError there.
 */
export function isShared(buf: ArrayBufferLike): boolean {
  return typeof SharedArrayBuffer !== 'undefined' && buf instanceof SharedArrayBuffer;
}
