/** What the worker's workflow bundle exports. */
export { labLease } from './labLease.js';
export { tunnelScenario } from './tunnelScenario.js';
