import * as path from 'node:path';
import { pythonBin, trainerScript } from '../../infra/paths';

/**
 * Where the clusters a fine-tune may run on are, and what their nodes run. This is the worker's configuration (its
 * environment), never the run spec's: a spec decides how many nodes and GPUs, not which server receives the
 * worker's credentials or which image runs with the artifacts volume mounted.
 */
export interface ClusterEndpoints {
  /** The Ray dashboard (Jobs API), e.g. http://ray-head:8265. */
  ray?: { address: string };
  kubernetes?: {
    /** The API server, e.g. https://kubernetes.default.svc. */
    apiServer: string;
    namespace: string;
    /** A bearer token file (in a pod: the service account's token). */
    tokenFile?: string;
    /** The image the TrainJob's nodes run: the GPU worker's image, so the trainer's paths are the same. */
    image: string;
    /** The ReadWriteMany claim holding the artifact root, mounted at `mountPath` (the same path the workers use). */
    artifactsClaim: string;
    mountPath: string;
    serviceAccountName?: string;
  };
  /** The trainer's interpreter and scripts on the cluster's nodes (default: the same paths as on this worker). */
  python: string;
  trainerDir: string;
}

export function clusterEndpointsFromEnv(env: NodeJS.ProcessEnv = process.env): ClusterEndpoints {
  const out: ClusterEndpoints = {
    python: env.DISTILLERY_CLUSTER_PYTHON || safePython(),
    trainerDir: env.DISTILLERY_CLUSTER_TRAINER_DIR || path.dirname(trainerScript('train_tiny.py')),
  };
  if (env.DISTILLERY_RAY_ADDRESS) out.ray = { address: env.DISTILLERY_RAY_ADDRESS.replace(/\/+$/, '') };
  if (env.DISTILLERY_KUBE_API) {
    const missing = ['DISTILLERY_TRAINJOB_IMAGE', 'DISTILLERY_ARTIFACTS_CLAIM', 'DISTILLERY_ARTIFACTS_MOUNT'].filter(
      (k) => !env[k],
    );
    if (missing.length)
      throw new Error(`DISTILLERY_KUBE_API is set but ${missing.join(', ')} ${missing.length > 1 ? 'are' : 'is'} not`);
    out.kubernetes = {
      apiServer: env.DISTILLERY_KUBE_API.replace(/\/+$/, ''),
      namespace: env.DISTILLERY_KUBE_NAMESPACE || 'distillery',
      tokenFile: env.DISTILLERY_KUBE_TOKEN_FILE || '/var/run/secrets/kubernetes.io/serviceaccount/token',
      image: env.DISTILLERY_TRAINJOB_IMAGE!,
      artifactsClaim: env.DISTILLERY_ARTIFACTS_CLAIM!,
      mountPath: env.DISTILLERY_ARTIFACTS_MOUNT!,
      ...(env.DISTILLERY_TRAINJOB_SERVICE_ACCOUNT
        ? { serviceAccountName: env.DISTILLERY_TRAINJOB_SERVICE_ACCOUNT }
        : {}),
    };
  }
  return out;
}

/** The worker's Python, or the venv path it would have: a worker without a venv can still submit to a cluster. */
function safePython(): string {
  try {
    return pythonBin();
  } catch {
    return process.env.DISTILLERY_PYTHON ?? '/opt/distillery/venv/bin/python';
  }
}
