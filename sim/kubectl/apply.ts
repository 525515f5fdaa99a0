/**
 * `kubectl apply -f`: applies the documents of the `-f` arguments to the simulated cluster, or with
 * `--dry-run` only reports what it would do.
 */
import { flagValue } from '../lib/pflag.js';
import { applyManifest, typeRef, type ClusterState } from '../lib/kube-cluster.js';
import { changeCluster, readCluster, readManifests, type Ctx } from './context.js';

export async function apply(ctx: Ctx): Promise<void> {
  const sources = readManifests(ctx);
  const dryRun = flagValue(ctx.args, 'dry-run');
  const suffix = dryRun && dryRun !== 'none' ? ` (${dryRun === 'server' ? 'server ' : ''}dry run)` : '';
  const run = (state: ClusterState) => {
    for (const { file, docs } of sources) {
      for (const doc of docs) {
        const result = applyManifest(state, doc, { file, namespace: flagValue(ctx.args, 'namespace') });
        if (result.error) {
          ctx.io.err.push(result.error);
          ctx.io.code = 1;
        } else {
          ctx.io.out.push(`${typeRef(result.info!)}/${result.name} ${result.verb}${suffix}`);
        }
      }
    }
  };
  if (suffix) run(readCluster(ctx.env));
  else await changeCluster(ctx.env, run);
}
