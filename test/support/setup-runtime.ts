import { DefaultLogger, Runtime } from '@temporalio/worker';

// Activity failures are expected in many tests; keep the SDK's output to real errors.
Runtime.install({ logger: new DefaultLogger('ERROR') });
