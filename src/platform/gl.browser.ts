/** The `gpu` device in a page: gpu.js's WebGL2 kernels, WebGL1 where the browser has no WebGL2. */

export function glMode(gpujs: any): { mode: string } | { mode: null; why: string } {
  if (gpujs.GPU.isWebGL2Supported) return { mode: 'webgl2' };
  if (gpujs.GPU.isWebGLSupported) return { mode: 'webgl' };
  return { mode: null, why: 'this browser has no WebGL2 or WebGL context (disabled, or no GPU process)' };
}
