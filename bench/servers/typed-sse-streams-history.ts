/** Contender `typed-sse-streams-history`: one in-memory channel per stream, history on: ids and the replay ring (see streams-app.ts). */
import { runStreamsContender } from './streams-app.js'

runStreamsContender({ history: true })
