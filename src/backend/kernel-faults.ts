/**
 * TEST-ONLY fault injection for split kernels (test/backend/kernel-threads-faults.test.ts): makes the next
 * split kernel's calling-thread part throw, or one worker's part throw, exit, hang, or be terminated while
 * it runs. Nothing in the library sets it, it reads no environment variable or other user input, and the
 * package index does not export it: only code that imports this module by path can arm a fault.
 */
export type WorkerFault = 'throw' | 'exit' | 'hang' | 'terminate';

export type KernelFault =
  /** the calling thread's own part throws after the workers' parts were posted */
  | { where: 'main' }
  /** worker part `part` (1 = the first worker's part): throws, exits its thread, spins forever, or is
   *  terminated by the calling thread once it has started running (it spins until then) */
  | { where: 'worker'; part: number; kind: WorkerFault };

const armed: { fault: KernelFault | null } = { fault: null };

/** Arms one fault for the next split kernel run (test use only, see above). */
export function injectKernelFault(fault: KernelFault | null): void {
  armed.fault = fault;
}

/** The armed fault, disarming it (the backend calls this once per split run). */
export function takeKernelFault(): KernelFault | null {
  const f = armed.fault;
  armed.fault = null;
  return f;
}
