/**
 * Times steps of a path one at a time (bench/streams-breakdown.ts, bench/redis-steps.ts):
 * CPU per call (user and system), median of `ROUNDS` rounds of `CALLS` calls each.
 * Options (env): CALLS (200000), ROUNDS (5).
 */

/** One step: its name, and a call that does it once (`i` counts the calls). */
export type Step = readonly [string, (i: number) => unknown]

const CALLS = Number(process.env.CALLS ?? 200_000)
const ROUNDS = Number(process.env.ROUNDS ?? 5)

/** Where each result goes, so the optimizer cannot drop a step's work. */
export let sink: unknown

function median (values: number[]): number {
  return [...values].sort((a, b) => a - b)[values.length >> 1]
}

async function measure (step: Step[1]): Promise<number> {
  const samples: number[] = []
  for (let round = 0; round < ROUNDS; round++) {
    const before = process.cpuUsage()
    for (let i = 0; i < CALLS; i++) sink = step(i)
    // Callbacks scheduled by the step (nextTick, promise reactions, timers cleared) run here and count.
    await new Promise((resolve) => setImmediate(resolve))
    const { user, system } = process.cpuUsage(before)
    samples.push((user + system) / CALLS)
  }
  return median(samples)
}

/**
 * Times every step and prints one line per step.
 *
 * @example
 * await printSteps([['JSON.stringify', (i) => JSON.stringify({ i })]])
 */
export async function printSteps (steps: readonly Step[]): Promise<void> {
  const lines = [`CPU per call, ${CALLS} calls, median of ${ROUNDS} (a ~50 B token):`]
  for (const [name, step] of steps) lines.push(`  ${(await measure(step)).toFixed(3)} us  ${name}`)
  console.log(lines.join('\n'))
}
