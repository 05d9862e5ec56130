/**
 * The bugs `npm run mutate` plants (scripts/mutate.ts), one at a time. Keep the list
 * growing: every bug found in lib/ (by a review, a user, a flaky run) gets a mutant
 * here once its test exists, so the test keeps proving it would catch it again.
 *
 * `snippet` must occur exactly once across lib/**\/*.ts (the run checks it before it
 * plants anything); make it longer until it does. `tests` are test file basenames,
 * found anywhere under test/; keep them few (the run is one tap process per mutant).
 * `grep` (tap --grep, matched against top-level test names) narrows a slow file to the
 * tests aimed at the mutant.
 */
export interface Mutant {
  /** Kebab-case, unique: `npm run mutate -- <id>` runs it alone. */
  readonly id: string
  /** The bug, in words: what a user would see. */
  readonly what: string
  readonly snippet: string
  readonly replacement: string
  readonly tests: readonly string[]
  readonly grep?: readonly string[]
  /** Seconds for this mutant's test run, when the default does not suit. */
  readonly timeoutS?: number
}

export const MUTANTS: readonly Mutant[] = [
  // --- live state: keyed state, coalescing, presence ---------------------------------
  {
    id: 'state-max-keys-ignored',
    what: 'a channel takes new keys past maxKeys (its state grows without bound)',
    snippet: 'return event === REMOVE_EVENT || this.#entries.has(key) || this.#entries.size < this.maxKeys',
    replacement: 'return true',
    tests: ['state.test.ts']
  },
  {
    id: 'state-remove-kept',
    what: 'channel.remove(key) leaves the key in the state: a snapshot still sends it',
    snippet: 'if (message.event !== REMOVE_EVENT) this.#entries.set(key, message)',
    replacement: 'this.#entries.set(key, message)',
    tests: ['state.test.ts']
  },
  {
    id: 'coalesce-keeps-replaced-frame',
    what: "under 'coalesce', the replaced event of a key is still sent (a slow reader gets stale values)",
    snippet: '    frames[index] = EMPTY\n',
    replacement: '',
    tests: ['state.test.ts']
  },
  {
    id: 'presence-join-per-connection',
    what: "sse:join is announced for every connection of a member, not once per member",
    snippet: 'if (await this.#engine.join(id, info)) await this.#announce(JOIN_EVENT',
    replacement: 'if ((await this.#engine.join(id, info)) || true) await this.#announce(JOIN_EVENT',
    tests: ['state.test.ts']
  },
  // --- core: frames ----------------------------------------------------------------
  {
    id: 'frame-size-without-blank-line',
    what: 'maxEventBytes lets a channel event one byte over the limit through (the size misses the blank line)',
    snippet: '  const fixed = 8 + Buffer.byteLength(event) + 1\n',
    replacement: '  const fixed = 8 + Buffer.byteLength(event)\n',
    tests: ['frame.test.ts']
  },
  {
    id: 'frame-data-unsplit',
    what: 'a data value with a line break is written as one data: line (event injection)',
    snippet: 'if (!LINE_BREAK_CHAR.test(text)) return `data: ${text}\\n`',
    replacement: 'return `data: ${text}\\n`',
    tests: ['frame.test.ts']
  },
  {
    id: 'frame-comment-unsplit',
    what: 'a comment with a line break is written as one comment line',
    snippet: 'out += `: ${line}\\n`',
    replacement: 'out += `: ${text}\\n`',
    tests: ['frame.test.ts']
  },
  {
    id: 'frame-id-unchecked',
    what: 'an id with a line break or NUL is written as is',
    snippet: "typeof id === 'string' && !ID_FORBIDDEN.test(id) && id.isWellFormed()",
    replacement: "typeof id === 'string' && id.isWellFormed()",
    tests: ['frame.test.ts']
  },
  {
    id: 'frame-retry-negative',
    what: 'a negative retry is written',
    snippet: '!Number.isSafeInteger(ms) || ms < 0)',
    replacement: '!Number.isSafeInteger(ms) || ms < -1)',
    tests: ['frame.test.ts']
  },
  {
    id: 'frame-event-unterminated',
    what: 'an event frame lacks its blank line: events run together',
    snippet: 'return `event: ${event}\\n${idLine}${retryLine}${dataField(data)}\\n`',
    replacement: 'return `event: ${event}\\n${idLine}${retryLine}${dataField(data)}`',
    tests: ['frame.test.ts']
  },
  {
    id: 'frame-event-name-line-break',
    what: 'an event name with a line break is accepted',
    snippet: "name.length === 0 || LINE_BREAK_CHAR.test(name) ||",
    replacement: 'name.length === 0 ||',
    tests: ['frame.test.ts', 'catalog.test.ts']
  },
  // --- core: catalog, merge, timers, Last-Event-ID --------------------------------------
  {
    id: 'catalog-unknown-event-sent',
    what: 'sending an event the catalog lacks does not throw',
    snippet: 'if (compiled === undefined) throw new UnknownEventError(',
    replacement: 'if (false) throw new UnknownEventError(',
    tests: ['catalog.test.ts']
  },
  {
    id: 'merge-position-inclusive',
    what: 'the message at the client\'s own position counts as after it: sent twice',
    snippet: 'compare(message.id, cursor) > 0',
    replacement: 'compare(message.id, cursor) >= 0',
    tests: ['merge.test.ts']
  },
  {
    id: 'timers-chain-fires-early',
    what: 'a far deadline (past 2^31-1 ms) runs its callback when the first link of the chain fires',
    snippet: 'timer = setTimeout(arm, MAX_TIMER_MS)',
    replacement: 'timer = setTimeout(fn, MAX_TIMER_MS)',
    tests: ['timers.test.ts']
  },
  {
    id: 'timers-no-chain',
    what: 'a deadline just past 2^31-1 ms is armed directly (Node fires it after 1 ms)',
    snippet: 'if (left > MAX_TIMER_MS) {',
    replacement: 'if (left > MAX_TIMER_MS * 2) {',
    tests: ['timers.test.ts']
  },
  {
    id: 'timers-near-deadline-late',
    what: 'a near deadline fires 20 s late',
    snippet: 'timer = setTimeout(fn, Math.max(0, left))',
    replacement: 'timer = setTimeout(fn, Math.max(20_000, left))',
    tests: ['timers.test.ts']
  },
  {
    id: 'last-event-id-unbounded',
    what: 'a Last-Event-ID past maxLastEventIdBytes is used',
    snippet: "header === '' || header.length > maxBytes) return undefined",
    replacement: "header === '') return undefined",
    tests: ['admission.test.ts'],
    grep: ['longer than maxLastEventIdBytes']
  },
  // --- http: negotiation, admission, HEAD, 204 -------------------------------------------
  {
    id: 'accept-q0-accepted',
    what: 'Accept: text/event-stream;q=0 is taken as acceptable',
    snippet: 'return quality > 0',
    replacement: 'return quality >= 0',
    tests: ['requests.test.ts']
  },
  {
    id: 'accept-q-ignored',
    what: 'the q= of an Accept range is ignored',
    snippet: 'const value = q === undefined ? 1 : Number(q.slice(2))',
    replacement: 'const value = 1',
    tests: ['requests.test.ts']
  },
  {
    id: 'negotiate-never',
    what: 'a request refusing text/event-stream gets a stream (no 406)',
    snippet: 'if (this.#rules.negotiate && !acceptsEventStream(request.headers.accept)) {',
    replacement: 'if (false) {',
    tests: ['requests.test.ts']
  },
  {
    id: 'head-not-negotiated',
    what: 'HEAD refusing text/event-stream gets 200 instead of the 406 a GET gets',
    snippet: "    if (disposition === 'head') admission.negotiate(reply.request)\n",
    replacement: '',
    tests: ['requests.test.ts']
  },
  {
    id: 'head-counted-by-limits',
    what: 'HEAD is admitted against maxStreams/maxStreamsPerKey: refused when they are full',
    snippet: "const release = disposition === 'stream' ? reserved",
    replacement: "const release = disposition !== 'ended' ? reserved",
    tests: ['requests.test.ts']
  },
  {
    id: 'head-runs-handler',
    what: 'HEAD on a { sse } route runs a plain async handler (its side effects happen on a HEAD)',
    snippet: 'if (streams.isAnsweredWithoutHandler(request)) {',
    replacement: 'if (false) {',
    tests: ['requests.test.ts']
  },
  {
    id: 'ended-stream-not-204',
    what: 'a client reconnecting to a stream that ended gets a new stream instead of 204',
    snippet: "=== END_EVENT ? 'ended' : 'stream'",
    replacement: "=== END_EVENT ? 'stream' : 'stream'",
    tests: ['requests.test.ts']
  },
  // --- stream: queue, hub, shutdown -------------------------------------------------------
  {
    id: 'queue-full-at-limit',
    what: "policy 'close' closes the stream when a frame exactly fills maxQueueBytes",
    snippet: 'if (this.#bytes + frame.length > maxQueueBytes) {',
    replacement: 'if (this.#bytes + frame.length >= maxQueueBytes) {',
    tests: ['backpressure.test.ts']
  },
  {
    id: 'queue-drop-uncounted',
    what: "'drop-oldest' drops frames without counting them for sse:missed",
    snippet: 'this.lost(dropped + (isTooLarge ? 1 : 0))',
    replacement: 'this.lost(isTooLarge ? 1 : 0)',
    tests: ['backpressure.test.ts']
  },
  {
    id: 'hub-stalled-one-period',
    what: 'a backed-up client counts as stalled after one heartbeat period instead of two',
    snippet: 'const STALLED_PERIODS = 2',
    replacement: 'const STALLED_PERIODS = 1',
    tests: ['backpressure.test.ts']
  },
  {
    id: 'hub-never-stalled',
    what: 'a backed-up client that accepts nothing is never closed as stalled',
    snippet: 'return this.tick - member[kLastWriteTick] > STALLED_PERIODS * TICKS_PER_HEARTBEAT',
    replacement: 'return false',
    tests: ['backpressure.test.ts']
  },
  {
    id: 'hub-heartbeat-late',
    what: 'the heartbeat comes after two periods of silence instead of one',
    snippet: 'if (tick - member[kLastWriteTick] > TICKS_PER_HEARTBEAT) member[kHeartbeat]()',
    replacement: 'if (tick - member[kLastWriteTick] > 3 * TICKS_PER_HEARTBEAT) member[kHeartbeat]()',
    tests: ['lifecycle.test.ts'],
    grep: ['^heartbeat']
  },
  {
    id: 'shutdown-retry-unspread',
    what: 'on shutdown every stream gets the same retry: all clients reconnect at once',
    snippet: 'retryFrame(graceMs + Math.floor(Math.random() * graceMs))',
    replacement: 'retryFrame(graceMs)',
    tests: ['shutdown.test.ts'],
    grep: ['spreads the reconnects']
  },
  {
    id: 'shutdown-retry-too-early',
    what: 'on shutdown a retry may be shorter than closeGraceMs: clients knock while the server still closes',
    snippet: 'retryFrame(graceMs + Math.floor(Math.random() * graceMs))',
    replacement: 'retryFrame(Math.floor(Math.random() * graceMs))',
    tests: ['shutdown.test.ts'],
    grep: ['spreads the reconnects']
  },
  {
    id: 'close-listener-not-removed',
    what: 'a removed onClose callback still runs',
    snippet: 'if (index !== -1) listeners.splice(index, 1)',
    replacement: 'if (index === -2) listeners.splice(index, 1)',
    tests: ['close-listeners.test.ts']
  },
  {
    id: 'chunked-drain-told-twice',
    what: "the response is told of one drain twice when the application also writes to reply.raw: drained() resolves while the socket is full",
    snippet: "  if (!this.writableNeedDrain) {",
    replacement: '  if (true) {',
    tests: ['chunked-writes.test.ts'],
    grep: ['drained']
  },
  // --- channel ----------------------------------------------------------------------------
  {
    id: 'channel-lagging-cursor-ignored',
    what: "after a replay, a lagging instance's late deliveries of what the client had are sent again",
    snippet: '        if (!isAfter(message, subscriber.cursor, this.#context.compare)) continue\n',
    replacement: '',
    tests: ['replay.test.ts']
  },
  {
    id: 'channel-filter-ignored',
    what: 'a subscriber filter is not applied',
    snippet: 'if (subscriber.filter !== undefined && decoded.isControl !== true && subscriber.filter(decoded.message) !== true) return true',
    replacement: 'if (subscriber.filter === null) return true',
    tests: ['channel.test.ts']
  },
  {
    id: 'channel-replay-no-cursor-move',
    what: 'a replay written page by page does not move its position: pages repeat',
    snippet: '      cursor = page.messages.findLast((message) => message.id !== undefined)?.id ?? cursor\n',
    replacement: '',
    tests: ['replay-reads.test.ts', 'replay.test.ts']
  },
  // --- engine: memory, history, replay reads ----------------------------------------------
  {
    id: 'memory-id-from-other-boot',
    what: "an id of an earlier process is replayed from instead of 'unknown'",
    snippet: "match === null || match[1] !== boot ? NaN",
    replacement: 'match === null ? NaN',
    tests: ['replay.test.ts']
  },
  {
    id: 'history-evicted-off-by-one',
    what: "the newest evicted id is replayed from instead of 'evicted'",
    snippet: "if (position < this.#evictedUpTo) return { status: 'evicted' }",
    replacement: "if (position < this.#evictedUpTo - 1) return { status: 'evicted' }",
    tests: ['history.test.ts', 'replay.test.ts']
  },
  {
    id: 'history-search-inclusive',
    what: 'a replay repeats the event at the client\'s own id',
    snippet: '<= position) low = middle + 1',
    replacement: '< position) low = middle + 1',
    tests: ['history.test.ts']
  },
  {
    id: 'history-page-overfull',
    what: 'a history page holds one event more than maxEvents',
    snippet: 'Math.min(this.#size, from + maxEvents)',
    replacement: 'Math.min(this.#size, from + maxEvents + 1)',
    tests: ['history.test.ts', 'replay-reads.test.ts']
  },
  {
    id: 'replay-reads-unbounded',
    what: 'more than MAX_REPLAY_READS history reads run at once',
    snippet: 'if (this.#running >= this.#max) await',
    replacement: 'if (this.#running > this.#max + 100) await',
    tests: ['replay-reads.test.ts']
  },
  {
    id: 'replay-reads-stale-share',
    what: 'a replay shares a read that began before its live messages were held: what came between is lost',
    snippet: 'if (pending !== undefined && (pending.startedAt === undefined || pending.startedAt > heldSince)) return await pending.page',
    replacement: 'if (pending !== undefined) return await pending.page',
    tests: ['replay-reads.test.ts']
  },
  {
    id: 'history-never-evicts',
    what: 'a history past maxEvents keeps growing instead of dropping its oldest event',
    snippet: 'if (this.#size < this.#options.maxEvents) this.#grow()',
    replacement: 'if (this.#size >= 0) this.#grow()',
    tests: ['history.test.ts', 'replay.test.ts']
  },
  {
    id: 'producer-source-end-ignored',
    what: 'from(): a source that ended leaves the stream open',
    snippet: '        if (end) target.end()\n',
    replacement: '',
    tests: ['lifecycle.test.ts'],
    grep: ['^from']
  },
  {
    id: 'producer-backpressure-ignored',
    what: "from(): the producer keeps pulling while the client does not read",
    snippet: 'if (!target.send(step.value) && !(await target.drained())) break',
    replacement: 'target.send(step.value)',
    tests: ['lifecycle.test.ts'],
    grep: ['^from']
  },
  {
    id: 'redis-state-id-unchecked',
    what: 'a keyed-state entry whose id is not a stream id (a CR written into the hash by anyone with access to Redis) reaches the frame unchecked',
    snippet: 'if (!ID_PATTERN.test(id) || event.length === 0) continue',
    replacement: 'if (event.length === 0) continue',
    tests: ['redis-codec.test.ts']
  },
  {
    id: 'frame-trusts-every-engine',
    what: 'frames write any engine\'s ids unchecked: a custom engine\'s id with a line break forges an event',
    snippet: 'return wireSafeIds.get(engine) === engine.channel',
    replacement: 'return true',
    tests: ['isolation.test.ts'],
    grep: ['another engine gives']
  },
  {
    id: 'redis-channel-key-untagged',
    what: 'a channel key without its hash tag: a channel\'s keys may land on different cluster slots',
    snippet: 'return `${prefix}ch:{${name}}`',
    replacement: 'return `${prefix}ch:${name}`',
    tests: ['redis-keys.test.ts']
  },
  {
    id: 'redis-resend-not-recognised',
    what: 'a publish ioredis resends after a failover\'s backlog is appended and delivered twice',
    snippet: 'if first then return first end',
    replacement: 'if false then return first end',
    tests: ['redis-keys.test.ts'],
    grep: ['resent']
  },
  {
    id: 'redis-catch-up-start-by-id-alone',
    what: "a catch-up from a woken master's id reads after its successor's entry of that id: the entry is skipped silently",
    snippet: "if fields[i] == 'p' then return fields[i + 1] == publishId and 1 or 0 end",
    replacement: "if fields[i] == 'p' then return 1 end",
    tests: ['redis-catch-up.test.ts'],
    grep: ['woken master']
  },
  {
    id: 'redis-chain-by-publish-id-alone',
    what: "a woken master's message after a publish both masters ran (at different ids) seems to follow the successor's run of it, and is delivered",
    snippet: '(message.previous === topic.lastPublishId && message.previousId === topic.lastEntryId)',
    replacement: '(message.previous === topic.lastPublishId)',
    tests: ['redis-catch-up.test.ts'],
    grep: ['one publish run by both']
  },
  {
    id: 'redis-foreign-publish-id-in-header',
    what: 'an entry written by someone else with a publish id a header cannot carry makes the next message foreign to every subscriber: it is not delivered until another publish',
    snippet: 'if not head or #head > ${PUBLISH_ID_MAX_HEAD} or #counter > ${PUBLISH_ID_MAX_COUNTER} then newestPublish = nil end',
    replacement: 'if false then newestPublish = nil end',
    tests: ['redis-catch-up.test.ts'],
    grep: ['written by someone else']
  },
  {
    id: 'redis-published-ids-unbounded',
    what: 'the publish ids a channel remembers grow without bound in Redis',
    snippet: "redis.call('RENAME', published, publishedBefore)",
    replacement: "redis.call('TYPE', published)",
    tests: ['redis-keys.test.ts'],
    grep: ['resent']
  },
  // --- http: OpenAPI ----------------------------------------------------------------------
  {
    id: 'openapi-2xx-overwritten',
    what: "a route's own 2xx response gets a 200 event stream beside it",
    snippet: "'2xx' in response || ",
    replacement: '',
    tests: ['openapi.test.ts']
  },
  {
    id: 'openapi-2XX-overwritten',
    what: "a route's own 2XX response gets a 200 event stream beside it",
    snippet: "'2XX' in response",
    replacement: "'2XXX' in response",
    tests: ['openapi.test.ts']
  },
  {
    id: 'openapi-200-overwritten',
    what: "a route's own 200 response is replaced by the event stream",
    snippet: "'200' in response || ",
    replacement: '',
    tests: ['openapi.test.ts']
  },
  // --- metrics ----------------------------------------------------------------------------
  {
    id: 'metrics-bucket-exclusive',
    what: 'a delivery exactly at a bucket bound is counted in the next bucket (le means at most)',
    snippet: 'seconds > DELIVERY_BUCKETS_SECONDS[bucket]',
    replacement: 'seconds >= DELIVERY_BUCKETS_SECONDS[bucket]',
    tests: ['metrics.test.ts']
  },
  {
    id: 'metrics-buckets-not-cumulative',
    what: 'histogram buckets are not cumulative',
    snippet: 'cumulative += this.#counts[bucket]',
    replacement: 'cumulative = this.#counts[bucket]',
    tests: ['metrics.test.ts']
  },
  {
    id: 'metrics-replay-results-swapped',
    what: 'sse_replays_total counts served replays as resync and resyncs as served',
    snippet: "[['served', replaysServed], ['resync', replayMisses]]",
    replacement: "[['served', replayMisses], ['resync', replaysServed]]",
    tests: ['metrics.test.ts']
  },
  // --- client -----------------------------------------------------------------------------
  {
    id: 'client-bom-every-line',
    what: 'the client parser drops a BOM at the start of every line, not only the stream\'s first',
    snippet: '    if (this.#isFirstLine) {',
    replacement: '    if (true) {',
    tests: ['client-parser.test.ts']
  },
  {
    id: 'client-crlf-split',
    what: 'a CRLF split across two chunks ends two lines',
    snippet: 'if (chunk[0] === LF) start = 1',
    replacement: 'if (chunk[0] === -1) start = 1',
    tests: ['client-parser.test.ts']
  },
  {
    id: 'client-space-kept',
    what: 'the client parser keeps the space after a field\'s colon (data: x reads " x")',
    snippet: 'if (value.charCodeAt(0) === 0x20) value = value.slice(1)',
    replacement: 'if (value.charCodeAt(0) === 0x09) value = value.slice(1)',
    tests: ['client-parser.test.ts']
  },
  {
    id: 'client-event-unbounded',
    what: 'an endless event is buffered without bound (maxEventBytes ignored)',
    snippet: 'if (this.#eventBytes + this.#pendingBytes > this.#maxEventBytes) {',
    replacement: 'if (false) {',
    tests: ['client-parser.test.ts']
  },
  {
    id: 'client-fetch-retries-not-reset',
    what: "the fetch client's retry count is never reset after events: waits grow for a stream that works",
    snippet: '        this.#retries = 0\n        this.#lastEventId = event.lastEventId',
    replacement: '        this.#lastEventId = event.lastEventId',
    tests: ['client-fetch.test.ts'],
    grep: ['backoff restarts']
  },
  {
    id: 'backoff-jitter-half',
    what: 'the reconnect jitter adds up to half the wait instead of a quarter',
    snippet: 'wait + Math.floor(random() * wait / 4)',
    replacement: 'wait + Math.floor(random() * wait / 2)',
    tests: ['client-fetch.test.ts'],
    grep: ['^backoff']
  },
  {
    id: 'backoff-tripling',
    what: 'reconnect waits triple instead of doubling',
    snippet: 'base * 2 ** Math.min(streak, 31)',
    replacement: 'base * 3 ** Math.min(streak, 31)',
    tests: ['client-fetch.test.ts'],
    grep: ['^backoff']
  },
  {
    id: 'retry-after-tenths',
    what: 'Retry-After in seconds is read as tenths of a second',
    snippet: 'Number.parseInt(value, 10) * 1000',
    replacement: 'Number.parseInt(value, 10) * 100',
    tests: ['client-fetch.test.ts'],
    grep: ['^backoff']
  },
  // --- engine: Redis ----------------------------------------------------------------------
  {
    id: 'redis-id-unanchored-start',
    what: 'a Redis stream id with something before it passes as an id',
    snippet: 'ID_PATTERN = /^(?:0|[1-9][0-9]{0,19})-(?:0|[1-9][0-9]{0,19})$/',
    replacement: 'ID_PATTERN = /(?:0|[1-9][0-9]{0,19})-(?:0|[1-9][0-9]{0,19})$/',
    tests: ['redis-codec.test.ts']
  },
  {
    id: 'redis-id-unanchored-end',
    what: 'a Redis stream id with something after it passes as an id',
    snippet: 'ID_PATTERN = /^(?:0|[1-9][0-9]{0,19})-(?:0|[1-9][0-9]{0,19})$/',
    replacement: 'ID_PATTERN = /^(?:0|[1-9][0-9]{0,19})-(?:0|[1-9][0-9]{0,19})/',
    tests: ['redis-codec.test.ts']
  },
  {
    id: 'redis-ids-compared-as-text',
    what: "stream ids of different lengths are compared as text ('9-0' after '10-0')",
    snippet: 'if (length !== bEnd - bStart) return length - (bEnd - bStart)',
    replacement: 'if (length === -1) return 0',
    tests: ['redis-codec.test.ts']
  },
  {
    id: 'redis-codec-bad-timestamp-kept',
    what: 'a message whose timestamp field no encoder writes is delivered',
    snippet: '  if (Number.isNaN(publishedAt)) return undefined\n',
    replacement: '',
    tests: ['redis-codec.test.ts']
  },
  {
    id: 'redis-catch-up-no-sync',
    what: 'the Redis catch-up lets go of its hold without the subscription round trip after its read',
    snippet: '      // Every message published before the read has now reached the hold.\n      await context.sync(topic)\n',
    replacement: '',
    tests: ['catch-up.test.ts']
  },
  {
    id: 'redis-position-moves-back',
    what: "a topic's position moves back to an older id",
    snippet: 'if (topic.lastId === undefined || compareIds(id, topic.lastId) > 0) topic.lastId = id',
    replacement: 'topic.lastId = topic.lastId ?? id',
    tests: ['catch-up.test.ts']
  },
  {
    id: 'redis-locate-emptied',
    what: 'a new topic does not record where its stream stood: after an outage with nothing delivered yet, a gap instead of a catch-up',
    snippet: '    this.#context.position(topic).then(async (id) => {\n      await this.#context.sync(topic)\n      if (isCurrent()) advance(topic, id)\n    }).catch(() => {})\n',
    replacement: '',
    tests: ['redis-catch-up.test.ts'],
    grep: ['delivered nothing yet']
  },
  {
    id: 'redis-slot-crc-polynomial',
    what: 'the cluster hash slot is computed with a wrong CRC16 polynomial',
    snippet: '((crc << 1) ^ 0x1021)',
    replacement: '((crc << 1) ^ 0x1022)',
    tests: ['admission-cluster.test.ts'],
    timeoutS: 240
  }
]
