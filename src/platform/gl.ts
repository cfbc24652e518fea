/**
 * Which gpu.js mode the `gpu` device runs on. Node: headless-gl (the `gl` package, WebGL 1 under Xvfb or
 * on a GPU). The browser build swaps in gl.browser.ts (WebGL2, WebGL1 fallback).
 */

/** The gpu.js mode for `gpu`, or why there is none here. */
export function glMode(gpujs: any): { mode: string } | { mode: null; why: string } {
  return gpujs.GPU.isHeadlessGLSupported ? { mode: 'headlessgl' } : { mode: null, why: 'headless-gl (`gl` package) not installed or no display' };
}
