/**
 * Redirects of the fetch transport. `fetch` follows redirects with the request's own
 * headers: Node's strips only `Authorization` and `Cookie` on a hop to another origin,
 * so an `x-api-key` or a POST body (307/308) would reach whoever the server points at.
 * In Node (whose fetch shows a manual redirect's `Location`) the transport asks for
 * `redirect: 'manual'` and follows here, hop by hop, as the
 * Fetch standard does (§4.4 "HTTP-redirect fetch": at most 20 hops, 303 and a POST
 * under 301/302 become a body-less GET), except that a hop to another origin is
 * refused (`TYPED_SSE_CLIENT_REDIRECT`) or, when the caller opts in, taken without the
 * caller's headers and body.
 *
 * A redirect to a scheme other than http(s) (`data:`, `file:`...) is refused under
 * either policy: Fetch §4.4 makes it a network error.
 *
 * Browsers hide the target of a manual redirect (an `opaqueredirect` response), and
 * asking again would send the request twice (a POST would run its handler twice). So
 * in a browser (a page or a worker: the runtime has a `location`) the request is sent
 * once and the browser follows: `'follow'` as is; `'refuse'` with `mode: 'same-origin'`
 * for a stream of the page's own origin (the browser fails a hop to another origin
 * before it sends anything there), and with `redirect: 'error'` for a stream on
 * another origin (any redirect fails). The browser does not tell the page why a fetch
 * failed, so such a refusal is a network error to the client: it reconnects with
 * backoff.
 */
import { SseClientError } from './errors.js'

/**
 * What to do when the stream redirects to another origin: `'refuse'` closes the client
 * with `TYPED_SSE_CLIENT_REDIRECT`; `'follow'` goes there as a GET without the caller's
 * headers and body.
 *
 * @example
 * const policy: CrossOriginRedirect = 'follow'
 */
export type CrossOriginRedirect = 'refuse' | 'follow'

/** The statuses that redirect (Fetch §2.2.6 "redirect status"). */
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308])

/** Fetch §4.4: a redirect chain longer than this is a network error. */
const MAX_REDIRECTS = 20

/** The headers that describe a body, dropped with it (Fetch §4.4 step 12). */
const BODY_HEADERS = ['content-encoding', 'content-language', 'content-location', 'content-type']

/** The `fetch` this module calls. */
type Fetch = (url: string, init: RequestInit) => Promise<Response>

/**
 * Fetches `url`, following redirects under `policy`.
 *
 * @param bare the headers to send past another origin (`Accept`, `Last-Event-ID`)
 * @throws SseClientError TYPED_SSE_CLIENT_REDIRECT for a refused or endless redirect
 * @example
 * const response = await fetchFollowing(fetch, url, { ...init, redirect: 'manual' }, bareHeaders, 'refuse')
 */
export async function fetchFollowing (fetch: Fetch, url: string, init: RequestInit, bare: Headers, policy: CrossOriginRedirect): Promise<Response> {
  const origin = new URL(url).origin
  const page = (globalThis as { location?: { origin?: unknown } }).location?.origin
  if (typeof page === 'string') {
    if (policy === 'follow') return await fetch(url, { ...init, redirect: 'follow' })
    return await fetch(url, page === origin ? { ...init, redirect: 'follow', mode: 'same-origin' } : { ...init, redirect: 'error' })
  }
  let request: RequestInit = { ...init, redirect: 'manual' }
  for (let hop = 0; ; hop++) {
    const response = await fetch(url, request)
    if (response.type === 'opaqueredirect') throw refused(url, 'a redirect whose target this runtime hides')
    const location = response.headers.get('location')
    if (!REDIRECT_STATUSES.has(response.status) || location === null) return response
    await response.body?.cancel().catch(() => {})
    if (hop === MAX_REDIRECTS) throw refused(url, `more than ${MAX_REDIRECTS} redirects`)
    const next = new URL(location, url)
    if (next.protocol !== 'http:' && next.protocol !== 'https:') throw refused(url, `${response.status} to a ${next.protocol} URL, which fetch never follows`)
    const method = (request.method ?? 'GET').toUpperCase()
    if (response.status === 303 ? method !== 'HEAD' : (response.status <= 302 && method === 'POST')) {
      const headers = new Headers(request.headers)
      for (const name of BODY_HEADERS) headers.delete(name)
      request = { ...request, method: 'GET', body: undefined, headers }
    }
    if (next.origin !== origin && request.headers !== bare) {
      if (policy === 'refuse') throw refused(url, `${response.status} to ${next.origin}, another origin`)
      // Once past another origin, the caller's headers and body are gone for good.
      request = { ...request, method: 'GET', body: undefined, headers: bare }
    }
    url = next.href
  }
}

function refused (url: string, what: string): SseClientError {
  return new SseClientError('TYPED_SSE_CLIENT_REDIRECT',
    `${url} answered ${what}: refused, so the request's headers and body go nowhere else; the client will not reconnect. ` +
    "Point the client at the final URL, or pass crossOriginRedirect: 'follow' to go there without them.")
}
