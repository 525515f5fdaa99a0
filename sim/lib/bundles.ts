/**
 * The simulated lab's programs as `npm run build` leaves them: every stand-in tool (sim/bin/* runs them)
 * and every daemon a stand-in starts with process.execPath is one file under dist/sim-bin/, bundled by
 * scripts/build-sim.ts with the packages it imports. Loaded from dist/sim/ instead, each call spent
 * about 0.2 s loading some 260 module files.
 */
import path from 'node:path';

/** Each is `dist/sim/<name>.js` bundled into `dist/sim-bin/<name>.cjs`. */
export const SIM_PROGRAMS = [
  'kubectl',
  'istioctl',
  'vagrant',
  'kubectl-local',
  'istioctl-local',
  'supervisor',
  'internet',
  'standin-host',
] as const;

export type SimProgram = (typeof SIM_PROGRAMS)[number];

/** The bundled program: what sim/bin/* and the stand-ins that start daemons run. */
export function simProgramPath(root: string, program: SimProgram): string {
  return path.join(root, 'dist', 'sim-bin', `${program}.cjs`);
}
