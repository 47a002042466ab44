// A browser for Python tests and benchmarks: Debian's chromium driven by playwright-core.
// Reads one JSON request per line on stdin ({"id", "op", ...}) and answers one JSON line on
// stdout ({"id", "ok", "result"} or {"id", "ok": false, "error"}). No browser is downloaded:
// the executable is $NOVA_CHROMIUM or `chromium` found on PATH.
import { accessSync, constants } from 'node:fs'
import { delimiter, join } from 'node:path'
import { createInterface } from 'node:readline'
import { chromium } from 'playwright-core'

const FLAGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'
]

function findChromium () {
  if (process.env.NOVA_CHROMIUM) return process.env.NOVA_CHROMIUM
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    for (const name of ['chromium', 'chromium-browser']) {
      const candidate = join(dir, name)
      try {
        accessSync(candidate, constants.X_OK)
        return candidate
      } catch {}
    }
  }
  throw new Error('chromium not found on PATH: run scripts/install_browser.sh')
}

let context = null
const pages = new Map() // name -> { page, logs }

function pageOf (name) {
  const entry = pages.get(name)
  if (entry === undefined) throw new Error(`no page named ${name}`)
  return entry.page
}

const ops = {
  async launch ({ userDataDir, viewport }) {
    const executablePath = findChromium()
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath,
      headless: true,
      args: FLAGS,
      viewport: viewport ?? { width: 1280, height: 800 },
      timeout: 60000
    })
    return { executablePath, version: context.browser()?.version() ?? null }
  },
  async open ({ page: name, url }) {
    const page = await context.newPage()
    const logs = []
    page.on('console', (message) => logs.push(`${message.type()}: ${message.text()}`))
    page.on('pageerror', (error) => logs.push(`pageerror: ${error.message}`))
    pages.set(name, { page, logs })
    const response = await page.goto(url, { waitUntil: 'domcontentloaded' })
    return { status: response?.status() ?? null }
  },
  async goto ({ page, url }) {
    const response = await pageOf(page).goto(url, { waitUntil: 'domcontentloaded' })
    return { status: response?.status() ?? null }
  },
  async logs ({ page }) {
    return pages.get(page)?.logs ?? []
  },
  // Polls with page.evaluate (which the page's Content-Security-Policy allows) rather than
  // waitForFunction (which would need 'unsafe-eval' in the page): the pages keep their real CSP.
  async wait ({ page, expression, timeoutMs }) {
    const deadline = performance.now() + timeoutMs
    let last
    for (;;) {
      try {
        last = await pageOf(page).evaluate(expression)
        if (last) return last
      } catch (error) {
        // a navigation in progress destroys the context: try again until the deadline
        if (!/context was destroyed|navigat/i.test(String(error))) throw error
      }
      if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms (last value ${JSON.stringify(last)})`)
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
  },
  async eval ({ page, expression }) {
    return await pageOf(page).evaluate(expression)
  },
  async click ({ page, selector }) {
    await pageOf(page).click(selector)
    return null
  },
  async type ({ page, text, delay }) {
    await pageOf(page).keyboard.type(text, { delay: delay ?? 0 })
    return null
  },
  async press ({ page, key }) {
    await pageOf(page).keyboard.press(key)
    return null
  },
  async text ({ page, selector }) {
    return await pageOf(page).locator(selector).innerText()
  },
  async screenshot ({ page, path, fullPage }) {
    await pageOf(page).screenshot({ path, fullPage: fullPage ?? false })
    return path
  },
  async close_page ({ page }) {
    await pageOf(page).close()
    pages.delete(page)
    return null
  },
  async close () {
    if (context !== null) await context.close()
    context = null
    return null
  }
}

const lines = createInterface({ input: process.stdin })
for await (const line of lines) {
  if (line.trim() === '') continue
  const request = JSON.parse(line)
  let reply
  try {
    const op = ops[request.op]
    if (op === undefined) throw new Error(`unknown op ${request.op}`)
    reply = { id: request.id, ok: true, result: (await op(request)) ?? null }
  } catch (error) {
    reply = { id: request.id, ok: false, error: error instanceof Error ? error.message : String(error) }
  }
  process.stdout.write(JSON.stringify(reply) + '\n')
}
if (context !== null) await context.close()
