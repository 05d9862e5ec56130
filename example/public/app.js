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
 * Shows the live scoreboard streamed as `score` events by `GET /scores`. Each event
 * carries one match's whole score, so the latest per match is the state. A new
 * connection gets every retained score first; a reconnect gets what it missed
 * (the browser sends Last-Event-ID). On `sse:resync` (the server could not replay
 * from our id) the page starts over with a new connection, which replays all.
 */
function startScoreboard () {
  const rows = new Map()
  const body = document.querySelector('#scores tbody')
  const empty = document.getElementById('scores-empty')

  function show ({ match, home, away }) {
    let row = rows.get(match)
    if (row === undefined) {
      row = body.insertRow()
      row.insertCell().textContent = match
      row.insertCell().className = 'score'
      rows.set(match, row)
    }
    row.cells[1].textContent = `${home} : ${away}`
    // Restart the highlight animation on every update.
    row.classList.remove('fresh')
    void row.offsetWidth
    row.classList.add('fresh')
    empty.hidden = true
  }

  function connect () {
    const client = createClient('/scores')
    showStatus(client, document.getElementById('scores-status'))
    client.on('score', show)
    client.onResync(() => {
      client.close()
      rows.clear()
      body.replaceChildren()
      connect()
    })
  }
  connect()

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
