/**
 * Contender `typed-sse-streams-redis`: one channel per stream on `redisEngine()` with the
 * runner's redis-server, history on; the publishes of a round are awaited together
 * (see streams-app.ts). Its floor is `ioredis-floor`.
 */
import { redisEngine } from '../../lib/redis.js'
import { runStreamsContender } from './streams-app.js'

const url = process.env.BENCH_REDIS_URL
if (url === undefined || url === '') throw new Error('BENCH_REDIS_URL is not set: the runner starts redis-server and passes its URL')
runStreamsContender({ history: true, engine: () => redisEngine({ url, prefix: process.env.BENCH_REDIS_PREFIX ?? 'bench:' }) })
