/** The stand-in kubectl as its own process (sim/bin/kubectl runs it when the lab's stand-in host does not answer). */
import { runAsProcess } from './lib/tool-io.js';
import { kubectl } from './kubectl/main.js';

runAsProcess(kubectl, 'error: ');
