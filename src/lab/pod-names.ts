/**
 * Which pod a label selector picked, kept by a worker for the steps after the one that asked: a probe or a
 * mesh.wait reaches the same client pod many times a run, and each `kubectl get pods` is a process (and on
 * a real lab a round trip to the API server).
 *
 * A kept name can go stale: the pod may be replaced. Steps that apply or remove manifests forget the names
 * of their cluster, and a command that finds the pod gone asks again (LabRuntime.inPod).
 */
export class PodNames {
  private readonly names = new Map<string, string>();

  get(kubeconfig: string, namespace: string, selector: string): string | undefined {
    return this.names.get(key(kubeconfig, namespace, selector));
  }

  set(kubeconfig: string, namespace: string, selector: string, pod: string): void {
    this.names.set(key(kubeconfig, namespace, selector), pod);
  }

  /** Forgets every name of the cluster this kubeconfig reaches. */
  forget(kubeconfig: string): void {
    for (const name of this.names.keys()) if (name.startsWith(`${kubeconfig}\0`)) this.names.delete(name);
  }
}

function key(kubeconfig: string, namespace: string, selector: string): string {
  return `${kubeconfig}\0${namespace}\0${selector}`;
}
