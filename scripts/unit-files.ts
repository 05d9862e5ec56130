/**
 * One process of `npm run test:unit`: loads each test file given on the command line,
 * in order; their tests join tap's root test and run one after another, as in a file
 * of their own.
 *
 * Why several files per process: starting Node with the TypeScript loader and loading
 * tap and Fastify costs about 2.5 s of CPU, more than most unit files' tests take; paid
 * once per process instead of once per file, the tier needs a quarter of the CPU.
 *
 * Why every file is loaded before the first test: a file's import compiles what it
 * reaches (Fastify's plugins, the TypeScript compiler, prom-client), and that work
 * would otherwise land while the first files' timed tests run (a reconnect measured
 * against a deadline missed it that way).
 */
import { pathToFileURL } from 'node:url'
import t from 'tap'

// The root's tests wait for this hook.
t.before(async () => {
  for (const file of process.argv.slice(2)) await import(pathToFileURL(file).href)
})
