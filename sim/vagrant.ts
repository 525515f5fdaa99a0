/** The stand-in vagrant as its own process (sim/bin/vagrant runs it when the lab's stand-in host does not answer). */
import { runAsProcess } from './lib/tool-io.js';
import { vagrant } from './vagrant/main.js';

runAsProcess(vagrant, 'vagrant (simulated lab): ');
