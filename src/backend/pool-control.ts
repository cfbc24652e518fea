/** Slots of the control block a pool worker shares with the calling thread (worker-pool.ts, pool-worker.ts). */
export const DONE = 0; // id of the last job the worker settled (waited on: the worker and the watchdog notify it)
export const STATUS = 1; // 1: that job succeeded, 2: it failed (its error is on the port, tagged with its id)
export const RUNNING = 2; // id of the job whose kernel (compiled by an earlier job) the worker is running
export const DEAD = 3; // 1 once the worker's thread has ended (set by the watchdog)
export const SLOTS = 4;
