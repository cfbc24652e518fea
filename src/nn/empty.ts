/** Uninitialised storage for a parameter that an initialiser fills right after. */
import { zeros } from '../tensor/creation';
import type { DeviceName } from '../backend/device';

export const empty = (shape: number[], device?: DeviceName) => zeros(shape, { device });
