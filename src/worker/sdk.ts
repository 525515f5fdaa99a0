/**
 * The parts of the Temporal SDK the worker starts with, loaded with `require`. The SDK's packages are
 * CommonJS: an ESM `import` of one first has Node scan its source, and that of every module it re-exports,
 * for the names it exports (cjs-module-lexer). For @temporalio/worker, client, common, activity and proto
 * that scan took 40-100 ms of the worker's start on a 2-core machine; `require` loads the same modules
 * without it. Each value is exported with its type under the same name, so modules use them as if
 * imported from the package. (Under Jest, `createRequire` is Jest's and loads from its module registry.)
 */
import { createRequire } from 'node:module';

type WorkerPackage = typeof import('@temporalio/worker');
type ClientPackage = typeof import('@temporalio/client');
type CommonPackage = typeof import('@temporalio/common');
type ActivityPackage = typeof import('@temporalio/activity');

const require = createRequire(import.meta.url);
const worker = require('@temporalio/worker') as WorkerPackage;
const client = require('@temporalio/client') as ClientPackage;
const common = require('@temporalio/common') as CommonPackage;
const activity = require('@temporalio/activity') as ActivityPackage;

export const { NativeConnection, Worker, Runtime, DefaultLogger } = worker;
export type NativeConnection = import('@temporalio/worker').NativeConnection;
export type Worker = import('@temporalio/worker').Worker;
export type Runtime = import('@temporalio/worker').Runtime;
export type DefaultLogger = import('@temporalio/worker').DefaultLogger;

export const { Client, ActivityNotFoundError } = client;
export type Client = import('@temporalio/client').Client;
export type ActivityNotFoundError = import('@temporalio/client').ActivityNotFoundError;

export const { ApplicationFailure } = common;
export type ApplicationFailure = import('@temporalio/common').ApplicationFailure;

export const { Context } = activity;
export type Context = import('@temporalio/activity').Context;
