/**
 * `npm run test:unit` (scripts/test-unit.ts) passes only when tests ran: a filter that
 * names no file (a typo, a file moved to another tier) must not report "all passed".
 */
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import t from 'tap'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))

t.test('test:unit with a filter that matches no file under test/unit/ fails instead of passing with 0 files', async (t) => {
  const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/test-unit.ts', 'no-such-test-file-zz9'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString() })
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve))
  t.not(code, 0, `exits non-zero (output: ${output.trim()})`)
  t.notMatch(output, /all passed/, 'does not say all passed')
})
