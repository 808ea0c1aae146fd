// Numerical faults live with the run driver (src/run/faults.ts); the settings table reads the default limit here.
export { DEFAULT_FAULT_LIMIT } from '../run/faults';
