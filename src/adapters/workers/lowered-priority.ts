/**
 * Imported first by every worker entry, so that the thread runs at its lower priority from its first module on:
 * loading the tokenizer tables alone takes a few hundred milliseconds of CPU, which must not compete with the event
 * loop at normal priority. The niceness comes from `workerData.niceness` (0–19) when the pool passes one.
 */
import { workerData } from 'node:worker_threads';
import { lowerThreadPriority } from './lower-priority';

lowerThreadPriority((workerData as { niceness?: number } | null)?.niceness);
