/**
 * Contender `typed-sse-channel`: this plugin's broadcast, `app.sse.channel(name,
 * catalog)`, with the plugin's defaults (see channel-app.ts).
 */
import { runChannelContender } from './channel-app.js'

runChannelContender()
