/** Contender `typed-sse-streams`: one in-memory channel per stream, history off (see streams-app.ts). */
import { runStreamsContender } from './streams-app.js'

runStreamsContender({ history: false })
