#!/usr/bin/env node
// Fan-out load generator for y-websocket servers.
//
// N raw `ws` clients join one document (sync step 1, wait for step 2). W of them
// are writers: each owns a Y.Doc and inserts "<writer>.<seq>;" into the text "t"
// every --interval ms, sending the real Yjs update. Every client reads the
// strings out of received updates with a byte scanner (no Y.Doc), so it can time
// each delivery against the writer's send time, which lives in this process.
//
// Phases: join -> warm-up -> measure -> drain. Only updates sent during the
// measure window are scored; writers stop when it ends, and the drain phase waits
// (bounded) for their late deliveries. Output: one JSON object per line on
// stdout; the last one has "event": "result". Diagnostics go to stderr.

import { monitorEventLoopDelay, performance } from 'node:perf_hooks'
import { parseArgs } from 'node:util'
import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'
import WebSocket from 'ws'
import * as Y from 'yjs'
import { scanStrings } from './update_scan.mjs'

const MSG_SYNC = 0
const MSG_AWARENESS = 1
const MSG_AUTH = 2
const SYNC_STEP1 = 0
const SYNC_STEP2 = 1
const SYNC_UPDATE = 2

const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]', '::1'])
// Latency histogram: 0.1 ms buckets below 100 ms, 1 ms buckets up to 120 s.
const FINE_MS = 100
const FINE_STEP_MS = 0.1
const COARSE_LIMIT_MS = 120_000
const FINE_BUCKETS = FINE_MS / FINE_STEP_MS
const HIST_BUCKETS = FINE_BUCKETS + (COARSE_LIMIT_MS - FINE_MS) + 1

const { values: opts } = parseArgs({
  options: {
    url: { type: 'string' },
    doc: { type: 'string', default: `fanout-${Date.now()}` },
    clients: { type: 'string', default: '10' },
    writers: { type: 'string', default: '10' },
    interval: { type: 'string', default: '50' },
    warmup: { type: 'string', default: '5' },
    duration: { type: 'string', default: '10' },
    drain: { type: 'string', default: '10' },
    'join-concurrency': { type: 'string', default: '50' },
    'join-timeout': { type: 'string', default: '60' },
    deflate: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false }
  }
})

if (opts.help || !opts.url) {
  process.stderr.write(`usage: node loadgen.mjs --url ws://127.0.0.1:PORT [options]
  --doc NAME              document name (default: fanout-<time>)
  --clients N             clients in the document, writers included (10)
  --writers W             writing clients (10)
  --interval MS           each writer inserts every MS milliseconds (50)
  --warmup S              seconds of writing before measuring (5)
  --duration S            measure window in seconds (10)
  --drain S               max seconds to wait for late deliveries (10)
  --join-concurrency K    clients joining at once after the first (50)
  --join-timeout S        give up on joins after S seconds (60)
  --deflate               offer permessage-deflate (off by default)
`)
  process.exit(opts.help ? 0 : 2)
}

const toInt = (name, min) => {
  const v = Number(opts[name])
  if (!Number.isInteger(v) || v < min) throw new Error(`--${name} must be an integer >= ${min}`)
  return v
}
const N = toInt('clients', 2)
const W = Math.min(toInt('writers', 1), N)
const INTERVAL_MS = toInt('interval', 1)
const WARM_S = Number(opts.warmup)
const MEASURE_S = Number(opts.duration)
const DRAIN_S = Number(opts.drain)
const JOIN_CONCURRENCY = toInt('join-concurrency', 1)
const JOIN_TIMEOUT_S = Number(opts['join-timeout'])
const target = new URL(opts.url)
if (!LOOPBACK_HOSTS.has(target.hostname)) throw new Error(`refusing non-loopback target ${target.hostname}`)
const docUrl = `${opts.url.replace(/\/+$/, '')}/${encodeURIComponent(opts.doc)}`

// Hard stop: this process never outlives its phases by more than a margin.
const HARD_LIMIT_S = JOIN_TIMEOUT_S + WARM_S + MEASURE_S + DRAIN_S + 30
setTimeout(() => {
  emit({ event: 'error', error: `hard time limit of ${HARD_LIMIT_S} s reached` })
  process.exit(3)
}, HARD_LIMIT_S * 1000).unref()

function emit (obj) {
  process.stdout.write(JSON.stringify({ t: +performance.now().toFixed(1), ...obj }) + '\n')
}

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

// ---- shared measurement state ----------------------------------------------
const SEQ_CAPACITY = Math.ceil(((WARM_S + MEASURE_S + 5) * 1000) / INTERVAL_MS) + 1000
const sendTimes = Array.from({ length: W }, () => new Float64Array(SEQ_CAPACITY))
const windowFirstSeq = new Int32Array(W).fill(-1) // first seq sent in the measure window
const sentInWindow = new Int32Array(W)
const hist = new Uint32Array(HIST_BUCKETS)
const stats = {
  phase: 'join',
  scored: 0, // deliveries of window updates, any time
  scoredLatencySum: 0,
  scoredLatencyMax: 0,
  arrivalsInWindow: 0, // deliveries of any update that arrived during the window
  bytesInWindow: 0,
  messagesInWindow: 0,
  duplicates: 0,
  echoes: 0,
  awareness: 0,
  parseErrors: 0,
  unknown: 0,
  closes: {}
}

const record = ms => {
  const i = ms < FINE_MS ? Math.floor(ms / FINE_STEP_MS) : FINE_BUCKETS + Math.min(Math.floor(ms - FINE_MS), HIST_BUCKETS - FINE_BUCKETS - 1)
  hist[i]++
}

const percentile = q => {
  const total = hist.reduce((a, b) => a + b, 0)
  if (total === 0) return null
  const rank = Math.ceil(q * total)
  let seen = 0
  for (let i = 0; i < HIST_BUCKETS; i++) {
    seen += hist[i]
    if (seen >= rank) return i < FINE_BUCKETS ? +((i + 1) * FINE_STEP_MS).toFixed(1) : FINE_MS + (i - FINE_BUCKETS + 1)
  }
  return null
}

// ---- messages --------------------------------------------------------------
const syncMessage = (kind, payload) => {
  const enc = encoding.createEncoder()
  encoding.writeVarUint(enc, MSG_SYNC)
  encoding.writeVarUint(enc, kind)
  encoding.writeVarUint8Array(enc, payload)
  return encoding.toUint8Array(enc)
}
const EMPTY_DOC = new Y.Doc()
const EMPTY_STEP1 = syncMessage(SYNC_STEP1, Y.encodeStateVector(EMPTY_DOC))
const EMPTY_STEP2 = syncMessage(SYNC_STEP2, Y.encodeStateAsUpdate(EMPTY_DOC))

// ---- clients ---------------------------------------------------------------
class Client {
  constructor (index) {
    this.index = index
    this.writer = index < W ? index : -1
    this.lastSeq = new Int32Array(W).fill(-1)
    this.scored = 0
    this.synced = false
    this.doc = null
    this.text = null
    this.seq = 0
    this.ws = null
    if (this.writer >= 0) {
      this.doc = new Y.Doc()
      this.text = this.doc.getText('t')
      this.doc.on('update', update => this.ws.send(syncMessage(SYNC_UPDATE, update)))
    }
  }

  join (timeoutMs) {
    return new Promise(resolve => {
      const timer = setTimeout(() => finish(false, 'sync timeout'), timeoutMs)
      const finish = (ok, why) => {
        clearTimeout(timer)
        if (!ok) {
          emit({ event: 'join_failed', client: this.index, reason: why })
          this.ws.terminate()
        }
        resolve(ok)
      }
      this.onSynced = () => finish(true)
      this.ws = new WebSocket(docUrl, { perMessageDeflate: opts.deflate, maxPayload: 256 * 1024 * 1024 })
      this.ws.binaryType = 'nodebuffer'
      this.ws.on('open', () => this.ws.send(EMPTY_STEP1))
      this.ws.on('message', (data, isBinary) => this.onMessage(data, isBinary))
      this.ws.on('error', err => {
        if (!this.synced) finish(false, String(err.message || err))
      })
      this.ws.on('close', code => {
        if (!this.synced) finish(false, `closed ${code}`)
        if (stats.phase !== 'closing') stats.closes[code] = (stats.closes[code] || 0) + 1
      })
    })
  }

  onMessage (data, isBinary) {
    const now = performance.now()
    if (!isBinary) {
      stats.unknown++
      return
    }
    if (stats.phase === 'measure') {
      stats.messagesInWindow++
      stats.bytesInWindow += data.length
    }
    const d = decoding.createDecoder(data)
    const type = decoding.readVarUint(d)
    if (type === MSG_AWARENESS) {
      stats.awareness++
      return
    }
    if (type !== MSG_SYNC) {
      if (type !== MSG_AUTH) stats.unknown++
      return
    }
    const kind = decoding.readVarUint(d)
    const payload = decoding.readVarUint8Array(d)
    if (kind === SYNC_STEP1) {
      const reply = this.doc ? syncMessage(SYNC_STEP2, Y.encodeStateAsUpdate(this.doc, payload)) : EMPTY_STEP2
      this.ws.send(reply)
    } else if (kind === SYNC_STEP2 && !this.synced) {
      this.synced = true // the initial state is not scored
      this.onSynced()
    } else if (kind === SYNC_UPDATE || kind === SYNC_STEP2) {
      this.score(payload, now)
    } else {
      stats.unknown++
    }
  }

  score (update, now) {
    try {
      scanStrings(update, s => {
        let start = 0
        for (let end = s.indexOf(';'); end >= 0; start = end + 1, end = s.indexOf(';', start)) {
          const dot = s.indexOf('.', start)
          if (dot < 0 || dot > end) continue
          this.deliver(+s.slice(start, dot), +s.slice(dot + 1, end), now)
        }
      })
    } catch (err) {
      if (stats.parseErrors++ === 0) process.stderr.write(`update parse error: ${err}\n`)
    }
  }

  deliver (w, seq, now) {
    if (!(w >= 0 && w < W)) return
    if (w === this.writer) {
      stats.echoes++
      return
    }
    if (seq <= this.lastSeq[w]) {
      stats.duplicates++
      return
    }
    this.lastSeq[w] = seq
    if (stats.phase === 'measure') stats.arrivalsInWindow++
    const first = windowFirstSeq[w]
    if (first < 0 || seq < first) return
    const ms = now - sendTimes[w][seq]
    this.scored++
    stats.scored++
    stats.scoredLatencySum += ms
    if (ms > stats.scoredLatencyMax) stats.scoredLatencyMax = ms
    record(ms)
  }

  write (now) {
    if (this.seq >= SEQ_CAPACITY || this.ws.readyState !== WebSocket.OPEN) return
    const seq = this.seq++
    sendTimes[this.writer][seq] = now
    if (stats.phase === 'measure') {
      if (windowFirstSeq[this.writer] < 0) windowFirstSeq[this.writer] = seq
      sentInWindow[this.writer]++
    }
    this.text.insert(this.text.length, `${this.writer}.${seq};`)
  }
}

// ---- run -------------------------------------------------------------------
const clients = Array.from({ length: N }, (_, i) => new Client(i))
const joinStart = performance.now()
const joinDeadline = joinStart + JOIN_TIMEOUT_S * 1000
const remaining = () => Math.max(1, joinDeadline - performance.now())

// One client first (creates the room), then the rest with bounded concurrency.
await clients[0].join(remaining())
let next = 1
const worker = async () => {
  while (next < N) {
    const c = clients[next++]
    await c.join(remaining())
  }
}
await Promise.all(Array.from({ length: Math.min(JOIN_CONCURRENCY, N - 1) }, worker))
const live = clients.filter(c => c.synced)
const liveWriters = live.filter(c => c.writer >= 0)
const extensions = live.length ? live[0].ws.extensions : ''
emit({ event: 'joined', clients: N, synced: live.length, writers: liveWriters.length, extensions, join_s: +((performance.now() - joinStart) / 1000).toFixed(3) })

const timers = liveWriters.map((c, k) => {
  const offset = (INTERVAL_MS * k) / Math.max(1, liveWriters.length)
  let interval = null
  const starter = setTimeout(() => {
    interval = setInterval(() => c.write(performance.now()), INTERVAL_MS)
  }, offset)
  return () => { clearTimeout(starter); if (interval) clearInterval(interval) }
})

stats.phase = 'warmup'
emit({ event: 'warmup_start' })
await sleep(WARM_S * 1000)

const loopDelay = monitorEventLoopDelay({ resolution: 10 })
const cpu0 = process.cpuUsage()
const t0 = performance.now()
stats.phase = 'measure'
emit({ event: 'measure_start' })
loopDelay.enable()
await sleep(MEASURE_S * 1000)
timers.forEach(stop => stop())
stats.phase = 'drain'
const t1 = performance.now()
const cpu = process.cpuUsage(cpu0)
loopDelay.disable()
emit({ event: 'measure_end' })

const sent = sentInWindow.reduce((a, b) => a + b, 0)
const expected = sent * (live.length - 1)
const drainDeadline = performance.now() + DRAIN_S * 1000
while (stats.scored < expected && performance.now() < drainDeadline) await sleep(50)
const drainS = (performance.now() - t1) / 1000

stats.phase = 'closing'
const measureS = (t1 - t0) / 1000
const cpuS = (cpu.user + cpu.system) / 1e6
// Each reader's expected count: window updates from every writer but itself.
const shares = live.map(c => {
  const own = c.writer >= 0 ? sentInWindow[c.writer] : 0
  const exp = sent - own
  return exp > 0 ? c.scored / exp : 1
})
const round = (v, digits = 3) => (v === null ? null : +v.toFixed(digits))
emit({
  event: 'result',
  url: docUrl,
  clients: N,
  synced: live.length,
  writers: liveWriters.length,
  interval_ms: INTERVAL_MS,
  ws_extensions: extensions,
  measure_s: round(measureS),
  drain_s: round(drainS),
  sent,
  sent_per_s: round(sent / measureS, 1),
  expected,
  delivered: stats.scored,
  delivered_share: expected > 0 ? round(stats.scored / expected, 4) : null,
  delivered_per_s: round(stats.scored / measureS, 1),
  arrivals_in_window: stats.arrivalsInWindow,
  arrivals_per_s: round(stats.arrivalsInWindow / measureS, 1),
  messages_in_window: stats.messagesInWindow,
  bytes_in_window: stats.bytesInWindow,
  client_share_min: round(Math.min(...shares), 4),
  latency_ms: {
    p50: percentile(0.5),
    p90: percentile(0.9),
    p99: percentile(0.99),
    max: round(stats.scoredLatencyMax, 1),
    mean: stats.scored ? round(stats.scoredLatencySum / stats.scored, 2) : null
  },
  loadgen_cpu_s: round(cpuS),
  loadgen_cpu_cores: round(cpuS / measureS),
  loadgen_loop_delay_p99_ms: round(loopDelay.percentile(99) / 1e6, 1),
  duplicates: stats.duplicates,
  echoes: stats.echoes,
  awareness_messages: stats.awareness,
  parse_errors: stats.parseErrors,
  unknown_messages: stats.unknown,
  closes_by_code: stats.closes
})

for (const c of clients) c.ws?.terminate()
process.exit(0)
