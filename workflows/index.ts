/** What the worker's workflow bundle exports. */
export { tunnelScenario } from './tunnelScenario.js';
