/**
 * Two views of one GL texture (4 flat cells per RGBA texel): gpu.js's memory-optimized float texture (a
 * kernel reads one cell at a time) and its Array(4) texture (a kernel reads a texel at a time).
 *
 * A view must be an instance of the very class the running gpu.js build makes: a kernel remembers its first
 * argument's constructor and asks to be rebuilt when a later argument has another (`argumentMismatch`). In a
 * page the bundle holds gpu.js's browser build (package.json `browser`: dist/gpu-browser.js, classes inside
 * it), so `require('gpu.js/src/.../memory-optimized')` would be a second copy of the class: a kernel first
 * fed a gpu.js result and later a view made from that copy (a compiled graph's replay does this) fails. The
 * classes are therefore taken from the textures two tiny kernels of this gpu.js instance return.
 */
import { releaseGlKernel } from './kernel-cache';
import type { GlTexture } from './gl-residency';

interface TextureClasses {
  /** memory-optimized float texture (GLTextureMemoryOptimized) */
  flat: new (settings: any) => GlTexture;
  /** Array(4) float texture (GLTextureArray4Float) */
  quads: new (settings: any) => GlTexture;
}

const probed = new WeakMap<object, TextureClasses>();

/** The texture classes of this gpu.js instance (probed once per instance: two 1-texel kernels). */
export function textureClasses(gpu: any): TextureClasses {
  const known = probed.get(gpu);
  if (known) return known;
  const settings = { output: [1], pipeline: true, immutable: true, precision: 'single' };
  const classOf = (source: string, optimizeFloatMemory: boolean) => {
    const k = gpu.createKernel(source, { ...settings, optimizeFloatMemory });
    const t = k();
    const cls = t.constructor;
    t.delete();
    // releaseGlKernel keeps the vertex buffer gpu.js's draws now use (this kernel's, the last built)
    releaseGlKernel(gpu, k);
    return cls;
  };
  const classes = { flat: classOf('function() { return 1; }', true), quads: classOf('function() { return [1, 2, 3, 4]; }', false) };
  probed.set(gpu, classes);
  return classes;
}

/**
 * The result of a quads kernel (an Array(4) texture of ceil(size/4) texels) as the memory-optimized float
 * texture of `size` cells it is bit for bit: texel t holds cells 4t..4t+3 in r, g, b, a, and both layouts
 * size the texture as the closest square of ceil(size/4) texels. Shares the GL texture (reference-counted).
 */
export function asFlatTexture(gpu: any, quads: any, size: number): any {
  const flat = new (textureClasses(gpu).flat)({ ...quads, texture: quads.texture, output: [size], dimensions: [size, 1, 1] });
  quads.delete();
  return flat;
}

/** A second view of a flat texture: Array(4) per texel (kernels read 4 consecutive cells with one fetch). */
export function asQuadTexture(gpu: any, flat: any, size: number): GlTexture {
  const n = Math.ceil(size / 4);
  return new (textureClasses(gpu).quads)({ ...flat, texture: flat.texture, output: [n], dimensions: [n, 1, 1] });
}
