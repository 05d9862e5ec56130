// The example page's script: one function per widget, so the widgets sit side by
// side without sharing state. All use the typed client served by the example
// (`fastify-typed-sse/client`, a plain ES module: no bundler needed); in a
// TypeScript page, `createClient<typeof clock>('/time')` types every handler.
import { createClient } from '/client/client.js'

/**
 * Shows a client's connection state on `element` (text and `data-state`, which
 * the CSS colours): connecting, open, reconnecting (the browser retries by itself)
 * or closed (the server refused the stream: no retry).
 *
 * @param {import('/client/client.js').SseClient} client
 * @param {HTMLElement} element
 */
function showStatus (client, element) {
  let wasOpen = false
  const set = (state) => {
    element.dataset.state = state
    element.textContent = state
  }
  set(client.status)
  client.onStatus((status) => {
    if (status === 'open') wasOpen = true
    set(status === 'connecting' && wasOpen ? 'reconnecting' : status)
  })
}

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' })
const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'full' })

/** Shows the server's clock, streamed as `tick` events by `GET /time`. */
function startClock () {
  const client = createClient('/time')
  showStatus(client, document.getElementById('status'))
  const time = document.getElementById('time')
  const date = document.getElementById('date')
  client.on('tick', (tick) => {
    // { now: ISO string, epochMs: integer }, validated by the server's catalog.
    const when = new Date(tick.epochMs)
    time.textContent = timeFormat.format(when)
    time.dateTime = tick.now
    date.textContent = dateFormat.format(when)
  })
}

/**
 * Shows the live scoreboard and who is watching it, from `GET /scores`: the server
 * keeps the latest score per match (keyed state) and sends it first, so a reload shows
 * the board at once; the client keeps it as a map (`client.state`), filled by that
 * snapshot and live events, emptied and filled again on a resync. The same stream
 * says who else watches (`client.presence`, from `sse:join` and `sse:leave`).
 */
function startScoreboard () {
  const rows = new Map()
  const body = document.querySelector('#scores tbody')
  const empty = document.getElementById('scores-empty')
  const viewer = Math.random().toString(36).slice(2, 10)
  const client = createClient(`/scores?viewer=${viewer}`)
  showStatus(client, document.getElementById('scores-status'))
  const scores = client.state('score', (score) => score.match)
  const watching = client.presence()

  function showScores () {
    for (const [match, { home, away }] of scores) {
      let row = rows.get(match)
      if (row === undefined) {
        row = body.insertRow()
        row.insertCell().textContent = match
        row.insertCell().className = 'score'
        rows.set(match, row)
      }
      const text = `${home} : ${away}`
      if (row.cells[1].textContent === text) continue
      row.cells[1].textContent = text
      // Restart the highlight animation on every update.
      row.classList.remove('fresh')
      void row.offsetWidth
      row.classList.add('fresh')
    }
    for (const [match, row] of rows) {
      if (scores.has(match)) continue
      row.remove()
      rows.delete(match)
    }
    empty.hidden = scores.size > 0
  }

  let seen = new Set()
  function showWatching () {
    const list = document.getElementById('watchers')
    list.replaceChildren(...[...watching].map(([id, info]) => {
      const item = document.createElement('li')
      item.textContent = id === viewer ? `${info.name} (this tab)` : info.name
      return item
    }))
    document.getElementById('watching-count').textContent = String(watching.size)
    const joined = [...watching.keys()].filter((id) => !seen.has(id) && id !== viewer)
    const left = [...seen].filter((id) => !watching.has(id))
    if (joined.length > 0 || left.length > 0) {
      const names = (ids, map) => ids.map((id) => map.get(id)?.name ?? id).join(', ')
      document.getElementById('watching-news').textContent = joined.length > 0 ? `${names(joined, watching)} joined` : `${left.length} left`
    }
    seen = new Set(watching.keys())
  }

  client.onState(() => {
    showScores()
    showWatching()
  })

  document.getElementById('score-form').addEventListener('submit', async (event) => {
    event.preventDefault()
    const form = new FormData(event.target)
    const score = { match: form.get('match'), home: Number(form.get('home')), away: Number(form.get('away')) }
    const response = await fetch('/score', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(score) })
    if (!response.ok) alert(`Not published: ${(await response.json()).message}`)
  })
}

/**
 * Shows the server's own figures, streamed as `figures` events by `GET /stats` (read
 * from `app.sse.stats()`), with a sparkline of events per second.
 */
function startFigures () {
  const client = createClient('/stats')
  showStatus(client, document.getElementById('figures-status'))
  const number = new Intl.NumberFormat()
  const line = document.querySelector('#sparkline polyline')
  const history = []
  client.on('figures', (figures) => {
    document.getElementById('open-streams').textContent = number.format(figures.openStreams)
    document.getElementById('events-per-second').textContent = number.format(figures.eventsPerSecond)
    document.getElementById('bytes-per-second').textContent = number.format(figures.bytesPerSecond)
    document.getElementById('replays').textContent = number.format(figures.replays)
    history.push(figures.eventsPerSecond)
    if (history.length > 60) history.shift()
    const top = Math.max(1, ...history)
    line.setAttribute('points', history.map((value, i) => `${(i * 300) / 59},${40 - (value / top) * 38 - 1}`).join(' '))
  })
}

startClock()
startScoreboard()
startFigures()
