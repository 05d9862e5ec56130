// The example page's script: one function per widget, so later widgets
// (scoreboard, typed client) sit next to the clock without sharing state.

/**
 * Shows a stream's connection state on `element` (text and `data-state`, which
 * the CSS colours): connecting, open, reconnecting or closed.
 *
 * @param {EventSource} source
 * @param {HTMLElement} element
 */
function showStatus (source, element) {
  const set = (state) => {
    element.dataset.state = state
    element.textContent = state
  }
  source.addEventListener('open', () => set('open'))
  source.addEventListener('error', () => {
    // The browser reconnects by itself unless the server refused the stream
    // (wrong status or content type), in which case readyState is CLOSED.
    set(source.readyState === EventSource.CLOSED ? 'closed' : 'reconnecting')
  })
}

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' })
const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'full' })

/** Shows the server's clock, streamed as `tick` events by `GET /time`. */
function startClock () {
  const source = new EventSource('/time')
  showStatus(source, document.getElementById('status'))
  const time = document.getElementById('time')
  const date = document.getElementById('date')
  source.addEventListener('tick', (event) => {
    // { now: ISO string, epochMs: integer }, validated by the server's catalog.
    const tick = JSON.parse(event.data)
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
    const source = new EventSource('/scores')
    showStatus(source, document.getElementById('scores-status'))
    source.addEventListener('score', (event) => show(JSON.parse(event.data)))
    source.addEventListener('sse:resync', () => {
      source.close()
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

startClock()
startScoreboard()
