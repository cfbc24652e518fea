/** Device names as users write them. Each is one gpu.js backend; 'auto' resolves to the best that works here. */
export type DeviceName = 'cpu' | 'webasm' | 'gpu' | 'webgpu';
export type DeviceSpec = DeviceName | 'auto';

export const DEVICE_NAMES: readonly DeviceName[] = ['cpu', 'webasm', 'gpu', 'webgpu'];

export function isDeviceName(x: unknown): x is DeviceName {
  return typeof x === 'string' && (DEVICE_NAMES as readonly string[]).includes(x);
}
