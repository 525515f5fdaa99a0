/** The stand-in istioctl as its own process (sim/bin/istioctl runs it when the lab's stand-in host does not answer). */
import { runAsProcess } from './lib/tool-io.js';
import { istioctl } from './istioctl/main.js';

runAsProcess(istioctl, 'Error: ');
