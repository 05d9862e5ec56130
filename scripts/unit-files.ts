/**
 * One process of `npm run test:unit`: loads the modules the unit tests share, then
 * each test file given on the command line, in order. Their tests join tap's root
 * test and run one after another, as in a file of their own.
 *
 * Why several files per process: starting Node with the TypeScript loader and loading
 * Fastify costs about 2.5 s of CPU, more than most unit files' tests take; paid once
 * per process instead of once per file, the tier needs a fifth of the CPU.
 *
 * Why the shared modules first: a test file's import compiles what it reaches, and
 * that work would otherwise land while the previous file's timed tests run.
 */
import { pathToFileURL } from 'node:url'

const SHARED = ['../lib/index.ts', '../lib/client.ts', '../test/helpers/app.ts', '../test/helpers/client.ts', '../test/helpers/parser.ts', 'eventsource', 'fast-check']

for (const specifier of SHARED) await import(specifier.startsWith('.') ? new URL(specifier, import.meta.url).href : specifier)
for (const file of process.argv.slice(2)) await import(pathToFileURL(file).href)
