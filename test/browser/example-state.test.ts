/**
 * The example page's live state in Chromium: the scoreboard is the channel's keyed
 * state (a reload shows the board at once, from the snapshot, with a match removed on
 * the server gone), and the "who is watching" card follows the open tabs (presence:
 * a second tab joins, closing it leaves).
 */
import t from 'tap'
import { launchChromium, skipWithoutChromium } from '../helpers/chromium.js'
import { startExample } from '../helpers/example.js'

t.test('the example in Chromium: the scoreboard from the snapshot after a reload, and who is watching with join and leave', { skip: skipWithoutChromium() }, async (t) => {
  const { url } = await startExample(t)
  const statuses: number[] = []
  const post = async (body: unknown): Promise<void> => {
    const response = await fetch(`${url}/score`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
    statuses.push(response.status)
  }
  // Many updates of two matches: the board is their latest scores, not the history.
  for (let home = 0; home <= 20; home++) await post({ match: 'AUS-NZL', home, away: 1 })
  await post({ match: 'FRA-ITA', home: 0, away: 3 })
  t.ok(statuses.every((status) => status === 201), `${statuses.length} scores published`)
  const browser = await launchChromium(t)
  const page = await browser.newPage()
  const pageErrors: string[] = []
  page.on('pageerror', (err) => pageErrors.push(err.message))
  await page.goto(url, { timeout: 10_000 })
  await page.locator('#scores tr', { hasText: 'FRA-ITA' }).waitFor({ timeout: 10_000 })
  t.same(await page.locator('#scores tr').allTextContents(), ['AUS-NZL20 : 1', 'FRA-ITA0 : 3'], 'the board: one row per match, its latest score')
  await page.locator('#watchers li', { hasText: '(this tab)' }).waitFor({ timeout: 10_000 })
  t.equal(await page.locator('#watching-count').textContent(), '1', 'one tab watching: this one')

  const second = await browser.newPage()
  await second.goto(url, { timeout: 10_000 })
  await page.waitForFunction(() => document.getElementById('watching-count')?.textContent === '2', undefined, { timeout: 10_000 })
  t.match(await page.locator('#watching-news').textContent(), /^Tab [0-9a-z]{4} joined$/, 'the first tab saw the second join')
  t.equal(await second.locator('#watchers li').count(), 2, 'the second tab lists both, from the snapshot')
  await second.close()
  await page.waitForFunction(() => document.getElementById('watching-count')?.textContent === '1', undefined, { timeout: 10_000 })
  t.equal(await page.locator('#watching-news').textContent(), '1 left', 'and saw it leave')

  await post({ match: 'AUS-NZL', home: 21, away: 1 })
  await page.locator('#scores tr', { hasText: 'AUS-NZL' }).locator('td.score', { hasText: '21 : 1' }).waitFor({ timeout: 10_000 })
  await page.reload({ timeout: 10_000 })
  await page.locator('#scores tr', { hasText: 'FRA-ITA' }).waitFor({ timeout: 10_000 })
  t.same(await page.locator('#scores tr').allTextContents(), ['FRA-ITA0 : 3', 'AUS-NZL21 : 1'], 'after a reload the snapshot shows the board at once (latest first by id)')
  t.same(pageErrors, [], 'no script errors')
})
