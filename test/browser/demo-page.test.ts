/**
 * The example page on a phone and on a desktop, in the light and the dark theme, in
 * real Chromium: the form stays usable (the match field wide enough, nothing wider
 * than the screen) and every text on the page meets WCAG 2.2 AA contrast (4.5:1),
 * form field borders 3:1. The ratios are computed here, from the browser's computed
 * colours, with WCAG's relative luminance. Screenshots go to .tap/screenshots/.
 */
import { mkdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { launchChromium, skipWithoutChromium } from '../helpers/chromium.js'
import { startExample } from '../helpers/example.js'

const SCREENSHOTS = fileURLToPath(new URL('../../.tap/screenshots/', import.meta.url))
const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])

/** WCAG 2.2 AA: 1.4.3 (text) and 1.4.11 (the boundary of a form field). */
const TEXT_CONTRAST = 4.5
const FIELD_BORDER_CONTRAST = 3

/** Narrower than this, "AUS-NZL vs FRA" no longer fits: the bug was about 10 px. */
const MIN_MATCH_FIELD_PX = 120
/** WCAG 2.2 AA 2.5.8: pointer targets at least 24 px high. */
const MIN_TARGET_PX = 24

const VIEWPORTS = [
  { name: 'phone', width: 375, height: 812 },
  { name: 'desktop', width: 1280, height: 800 }
]
const SCHEMES = ['light', 'dark'] as const

type Rgba = [number, number, number, number]

/** Parses the `rgb()`/`rgba()` strings getComputedStyle returns for colours. */
function parseColor (css: string): Rgba {
  const match = /^rgba?\(([\d.]+),\s*([\d.]+),\s*([\d.]+)(?:,\s*([\d.]+))?\)$/.exec(css)
  if (match === null) throw new Error(`not an rgb() colour: ${css}`)
  return [Number(match[1]), Number(match[2]), Number(match[3]), match[4] === undefined ? 1 : Number(match[4])]
}

/** `top` painted over the opaque `bottom`. */
function over (top: Rgba, bottom: Rgba): Rgba {
  const [r, g, b, a] = top
  return [r * a + bottom[0] * (1 - a), g * a + bottom[1] * (1 - a), b * a + bottom[2] * (1 - a), 1]
}

/** WCAG relative luminance of an opaque sRGB colour. */
function luminance ([r, g, b]: Rgba): number {
  const linear = (channel: number): number => {
    const c = channel / 255
    return c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4
  }
  return 0.2126 * linear(r) + 0.7152 * linear(g) + 0.0722 * linear(b)
}

/** WCAG contrast ratio, from 1 to 21. */
function contrast (a: Rgba, b: Rgba): number {
  const [light, dark] = [luminance(a), luminance(b)].sort((x, y) => y - x)
  return (light + 0.05) / (dark + 0.05)
}

/**
 * The colour behind an element: its own background and its ancestors' (innermost
 * first, as collected in the page), painted from the outside in on the canvas.
 */
function backdrop (layers: string[], canvas: Rgba): Rgba {
  return layers.map(parseColor).reduceRight((below, layer) => over(layer, below), canvas)
}

interface Swatch {
  /** What the colour is on: tag, id or name, and a bit of its text. */
  label: string
  /** The text colour (or a border colour, for field borders). */
  color: string
  /** Background colours from the element out to <html>. */
  layers: string[]
}

interface PageColors {
  canvas: string
  texts: Swatch[]
  placeholders: Swatch[]
  borders: Swatch[]
}

t.test('the demo page on a phone and a desktop, light and dark: usable layout, AA contrast', { skip: skipWithoutChromium() }, async (t) => {
  const { url } = await startExample(t)
  const published = await fetch(`${url}/score`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"match":"AUS-NZL","home":2,"away":1}', signal: AbortSignal.timeout(5000)
  })
  t.equal(published.status, 201, 'a score to show in the table')
  await mkdir(SCREENSHOTS, { recursive: true })

  const browser = await launchChromium(t)
  const page = await browser.newPage()
  const pageErrors: string[] = []
  page.on('pageerror', (err) => pageErrors.push(err.message))
  await page.goto(url, { timeout: 10_000 })
  await page.locator('#status[data-state="open"]').waitFor({ timeout: 5000 })
  await page.locator('#scores td.score', { hasText: '2 : 1' }).waitFor({ timeout: 5000 })
  await page.locator('#time', { hasText: /^\d\d:\d\d:\d\d$/ }).waitFor({ timeout: 5000 })

  for (const scheme of SCHEMES) {
    for (const viewport of VIEWPORTS) {
      await t.test(`${viewport.name} (${viewport.width}x${viewport.height}), ${scheme}`, async (t) => {
        await page.setViewportSize({ width: viewport.width, height: viewport.height })
        await page.emulateMedia({ colorScheme: scheme })
        // The score row's highlight animates its background: measure after it ends.
        await page.waitForFunction(() => document.getAnimations().length === 0, undefined, { timeout: 5000 })

        const layout = await page.evaluate(() => {
          const box = (selector: string): DOMRect => (document.querySelector(selector) as HTMLElement).getBoundingClientRect()
          return {
            scrollWidth: document.documentElement.scrollWidth,
            match: box('#score-form input[name=match]').toJSON() as DOMRect,
            controls: Array.from(document.querySelectorAll('#score-form input, #score-form button'))
              .map((element) => ({ name: element.getAttribute('name') ?? element.tagName, ...element.getBoundingClientRect().toJSON() as DOMRect }))
          }
        })
        t.ok(layout.match.width >= MIN_MATCH_FIELD_PX, `the match field is ${layout.match.width.toFixed(0)} px wide (>= ${MIN_MATCH_FIELD_PX})`)
        t.ok(layout.scrollWidth <= viewport.width, `no sideways scrolling (page ${layout.scrollWidth} px wide)`)
        const cramped = layout.controls.filter((control) => control.right > viewport.width || control.left < 0 || control.height < MIN_TARGET_PX)
        t.same(cramped, [], `every form control is on screen and at least ${MIN_TARGET_PX} px high`)

        const colors: PageColors = await page.evaluate(() => {
          const layersOf = (element: Element): string[] => {
            const layers: string[] = []
            for (let node: Element | null = element; node !== null; node = node.parentElement) layers.push(getComputedStyle(node).backgroundColor)
            return layers
          }
          const label = (element: Element): string => {
            const name = element.id !== '' ? `#${element.id}` : element.getAttribute('name') ?? ''
            return `${element.tagName.toLowerCase()}${name === '' ? '' : ` ${name}`} "${(element.textContent ?? '').trim().slice(0, 24)}"`
          }
          const isShown = (element: Element): boolean => {
            const rect = element.getBoundingClientRect()
            return rect.width > 0 && rect.height > 0 && getComputedStyle(element).visibility === 'visible'
          }
          // Every element that shows text of its own, and the form fields (their values).
          const texts = Array.from(document.querySelectorAll('body, body *')).filter((element) =>
            isShown(element) && (element.matches('input, button') ||
              Array.from(element.childNodes).some((node) => node.nodeType === Node.TEXT_NODE && (node.textContent ?? '').trim() !== '')))
          const fields = Array.from(document.querySelectorAll('input')).filter(isShown)
          return {
            canvas: getComputedStyle(document.documentElement).backgroundColor === 'rgba(0, 0, 0, 0)'
              ? getComputedStyle(document.body).backgroundColor
              : getComputedStyle(document.documentElement).backgroundColor,
            texts: [document.body, ...texts].map((element) => ({ label: label(element), color: getComputedStyle(element).color, layers: layersOf(element) })),
            placeholders: fields.filter((field) => field.placeholder !== '')
              .map((field) => ({ label: `${label(field)} placeholder`, color: getComputedStyle(field, '::placeholder').color, layers: layersOf(field) })),
            // A border against what surrounds the field (the card), not its own fill.
            borders: fields.map((field) => ({ label: `${label(field)} border`, color: getComputedStyle(field).borderTopColor, layers: layersOf(field.parentElement as Element) }))
          }
        })

        const canvas = parseColor(colors.canvas)
        t.ok(scheme === 'dark' ? luminance(canvas) < 0.05 : luminance(canvas) > 0.8, `the ${scheme} theme is applied (page background ${colors.canvas})`)
        const measure = (swatch: Swatch): { label: string, ratio: number } => {
          const behind = backdrop(swatch.layers, canvas)
          return { label: `${swatch.label}: ${swatch.color} on rgb(${behind.slice(0, 3).map(Math.round).join(', ')})`, ratio: contrast(over(parseColor(swatch.color), behind), behind) }
        }
        const texts = [...colors.texts, ...colors.placeholders].map(measure)
        const button = texts.find((text) => text.label.startsWith('button'))
        const body = texts.find((text) => text.label.startsWith('body'))
        t.ok(button !== undefined && button.ratio >= TEXT_CONTRAST, `Publish button ${button?.ratio.toFixed(2)}:1 (${button?.label})`)
        t.ok(body !== undefined && body.ratio >= TEXT_CONTRAST, `body text ${body?.ratio.toFixed(2)}:1 (${body?.label})`)
        t.ok(texts.length >= 15, `measured ${texts.length} texts`)
        t.same(texts.filter((text) => text.ratio < TEXT_CONTRAST).map((text) => `${text.ratio.toFixed(2)}:1 ${text.label}`), [],
          `every text at least ${TEXT_CONTRAST}:1`)
        t.same(colors.borders.map(measure).filter((border) => border.ratio < FIELD_BORDER_CONTRAST).map((border) => `${border.ratio.toFixed(2)}:1 ${border.label}`), [],
          `form field borders at least ${FIELD_BORDER_CONTRAST}:1 against the card`)

        const path = join(SCREENSHOTS, `demo-${viewport.name}-${scheme}.png`)
        await page.screenshot({ path, fullPage: true, timeout: 10_000 })
        const png = await readFile(path)
        t.ok(png.subarray(0, 8).equals(PNG_SIGNATURE) && png.length > 1000, `screenshot ${path} (${png.length} bytes)`)
      })
    }
  }

  // The form works where it was broken: a phone, dark theme.
  await page.setViewportSize({ width: 375, height: 812 })
  await page.emulateMedia({ colorScheme: 'dark' })
  await page.fill('#score-form input[name=match]', 'FRA-ITA')
  await page.fill('#score-form input[name=home]', '0')
  await page.fill('#score-form input[name=away]', '3')
  await page.click('#score-form button', { timeout: 5000 })
  await page.locator('#scores tr', { hasText: 'FRA-ITA' }).locator('td.score', { hasText: '0 : 3' }).waitFor({ timeout: 5000 })
  t.pass('published from the phone layout, and the page shows it')
  t.same(pageErrors, [], 'no script errors')
})

t.test('the third card shows the server at work: its figures update from GET /stats, with a sparkline', { skip: skipWithoutChromium() }, async (t) => {
  const { url } = await startExample(t, { tickMs: 200, figuresMs: 200 })
  const browser = await launchChromium(t)
  const page = await browser.newPage()
  await page.setViewportSize({ width: 1280, height: 900 })
  await page.goto(url, { timeout: 10_000 })
  // The page itself holds three streams: the clock, the scores and these figures.
  await page.waitForFunction(() => Number(document.getElementById('open-streams')?.textContent) >= 3, undefined, { timeout: 15_000 })
  t.pass('open streams counts the page\'s own three streams')
  // The clock ticks every 200 ms: events flow, and the rate shows it.
  await page.waitForFunction(() => Number(document.getElementById('events-per-second')?.textContent?.replace(/\D/g, '')) > 0, undefined, { timeout: 15_000 })
  t.pass('events/s is above zero')
  await page.waitForFunction(() => (document.querySelector('#sparkline polyline')?.getAttribute('points') ?? '').split(' ').length >= 5, undefined, { timeout: 15_000 })
  const points = await page.evaluate(() => document.querySelector('#sparkline polyline')?.getAttribute('points') ?? '')
  t.ok(points.split(' ').every((point) => /^[\d.]+,[\d.-]+$/.test(point)), `the sparkline is drawn (${points.split(' ').length} points)`)
  const before = await page.evaluate(() => document.getElementById('bytes-per-second')?.textContent)
  await page.waitForFunction((first) => document.getElementById('bytes-per-second')?.textContent !== first, before, { timeout: 15_000 })
  t.pass('the figures keep updating')
  await mkdir(SCREENSHOTS, { recursive: true })
  const path = join(SCREENSHOTS, 'server-figures.png')
  await page.locator('section[aria-labelledby="figures-title"]').screenshot({ path, timeout: 10_000 })
  const png = await readFile(path)
  t.ok(png.subarray(0, 8).equals(PNG_SIGNATURE) && png.length > 1000, `screenshot ${path} (${png.length} bytes)`)
})
