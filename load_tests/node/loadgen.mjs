#!/usr/bin/env node
// Load generator for y-websocket style servers (and Hocuspocus's framing).
//
// N raw `ws` clients join one or more documents (sync step 1, wait for step 2).
// Writers own a Y.Doc and insert "<writer>.<seq>;" into the text "t", sending
// the real Yjs update. Every client reads the strings out of received updates
// with a byte scanner (no Y.Doc), so it can time each delivery against the
// writer's send time, which lives in this process.
//
// Modes (--mode):
//   fanout      join -> warm-up -> measure -> drain; W writers insert every --interval ms
//   full-speed  one writer inserts as fast as the server relays (at most --inflight
//               updates not yet seen by the first reader), the others read
//   presence    every client sends an awareness update every --presence-interval ms,
//               one writer inserts every --interval ms; --observers clients time presence
//   idle        join, then hold the connections open for --hold seconds
//   join-storm  client 0 seeds the document from --doc-file, then all others join at once
//
// Clients are spread over the comma-separated --url list (client i uses url i mod k)
// and over --docs documents (client i is in document i mod D).
// Output: one JSON object per line on stdout; the last one has "event": "result".

import fs from 'node:fs'
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
const MSG_QUERY_AWARENESS = 3
const MSG_HOCUSPOCUS_SYNC_STATUS = 8
const SYNC_STEP1 = 0
const SYNC_STEP2 = 1
const SYNC_UPDATE = 2
const AUTH_TOKEN = 0
const AUTH_PERMISSION_DENIED = 0

const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]', '::1'])
const MAX_PAYLOAD_BYTES = 512 * 1024 * 1024
const PRESENCE_DEADLINE_MS = 1000

const { values: opts } = parseArgs({
  options: {
    url: { type: 'string' },
    protocol: { type: 'string', default: 'y-websocket' },
    mode: { type: 'string', default: 'fanout' },
    doc: { type: 'string', default: `fanout-${Date.now()}` },
    docs: { type: 'string', default: '1' },
    clients: { type: 'string', default: '10' },
    writers: { type: 'string', default: '10' },
    interval: { type: 'string', default: '50' },
    warmup: { type: 'string', default: '5' },
    duration: { type: 'string', default: '10' },
    drain: { type: 'string', default: '10' },
    hold: { type: 'string', default: '5' },
    inflight: { type: 'string', default: '64' },
    observers: { type: 'string', default: '20' },
    'presence-interval': { type: 'string', default: '1000' },
    'doc-file': { type: 'string' },
    'storm-timeout': { type: 'string', default: '60' },
    'join-concurrency': { type: 'string', default: '50' },
    'join-timeout': { type: 'string', default: '60' },
    deflate: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false }
  }
})

if (opts.help || !opts.url) {
  process.stderr.write(`usage: node loadgen.mjs --url ws://127.0.0.1:PORT[,ws://127.0.0.1:PORT2...] [options]
  --mode M                fanout | full-speed | presence | idle | join-storm (fanout)
  --protocol P            y-websocket | hocuspocus (y-websocket)
  --doc NAME              document name prefix (default: fanout-<time>)
  --docs D                documents; client i joins document i mod D (1)
  --clients N             clients, writers included (10)
  --writers W             writing clients, the first W (10; 1 in full-speed and presence)
  --interval MS           each writer inserts every MS milliseconds (50)
  --warmup S / --duration S / --drain S   phases in seconds (5 / 10 / 10)
  --hold S                idle mode: seconds to hold the connections (5)
  --inflight K            full-speed mode: updates the first reader has not seen yet (64)
  --observers K           presence mode: clients that time presence deliveries (20)
  --presence-interval MS  presence mode: each client's awareness period (1000)
  --doc-file PATH         join-storm mode: seed document (PATH.json + PATH.bin, see build_doc.mjs)
  --storm-timeout S       join-storm mode: give up after S seconds (60)
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
const MODE = opts.mode
if (!['fanout', 'full-speed', 'presence', 'idle', 'join-storm'].includes(MODE)) throw new Error(`unknown --mode ${MODE}`)
if (!['y-websocket', 'hocuspocus'].includes(opts.protocol)) throw new Error(`unknown --protocol ${opts.protocol}`)
const HOCUSPOCUS = opts.protocol === 'hocuspocus'
const N = toInt('clients', MODE === 'idle' || MODE === 'join-storm' ? 1 : 2)
const D = Math.min(toInt('docs', 1), N)
const W = ['idle', 'join-storm'].includes(MODE) ? 0 : ['full-speed', 'presence'].includes(MODE) ? 1 : Math.min(toInt('writers', 1), N)
const INTERVAL_MS = toInt('interval', 1)
const WARM_S = Number(opts.warmup)
const MEASURE_S = Number(opts.duration)
const DRAIN_S = Number(opts.drain)
const HOLD_S = Number(opts.hold)
const INFLIGHT = toInt('inflight', 1)
const PRESENCE_MS = toInt('presence-interval', 10)
const STORM_TIMEOUT_S = Number(opts['storm-timeout'])
const JOIN_CONCURRENCY = toInt('join-concurrency', 1)
const JOIN_TIMEOUT_S = Number(opts['join-timeout'])
const URLS = opts.url.split(',').filter(Boolean).map(u => u.replace(/\/+$/, ''))
for (const u of URLS) {
  const host = new URL(u).hostname
  if (!LOOPBACK_HOSTS.has(host)) throw new Error(`refusing non-loopback target ${host}`)
}
const K = URLS.length
const docName = d => (D === 1 ? opts.doc : `${opts.doc}-${d}`)

// Hard stop: this process never outlives its phases by more than a margin.
const HARD_LIMIT_S = JOIN_TIMEOUT_S + WARM_S + MEASURE_S + DRAIN_S + HOLD_S + (MODE === 'join-storm' ? 2 * STORM_TIMEOUT_S : 0) + 30
setTimeout(() => {
  emit({ event: 'error', error: `hard time limit of ${HARD_LIMIT_S} s reached` })
  process.exit(3)
}, HARD_LIMIT_S * 1000).unref()

function emit (obj) {
  process.stdout.write(JSON.stringify({ t: +performance.now().toFixed(1), ...obj }) + '\n')
}

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))
const round = (v, digits = 3) => (v === null || v === undefined || !Number.isFinite(v) ? null : +v.toFixed(digits))

// ---- latency histogram: 0.1 ms buckets below 100 ms, 1 ms buckets up to 120 s ----
const FINE_MS = 100
const FINE_STEP_MS = 0.1
const COARSE_LIMIT_MS = 120_000
const FINE_BUCKETS = FINE_MS / FINE_STEP_MS
const HIST_BUCKETS = FINE_BUCKETS + (COARSE_LIMIT_MS - FINE_MS) + 1

class Histogram {
  constructor () {
    this.counts = new Uint32Array(HIST_BUCKETS)
    this.total = 0
    this.sum = 0
    this.max = 0
  }

  record (ms) {
    const i = ms < FINE_MS ? Math.max(0, Math.floor(ms / FINE_STEP_MS)) : FINE_BUCKETS + Math.min(Math.floor(ms - FINE_MS), HIST_BUCKETS - FINE_BUCKETS - 1)
    this.counts[i]++
    this.total++
    this.sum += ms
    if (ms > this.max) this.max = ms
  }

  percentile (q) {
    if (this.total === 0) return null
    const rank = Math.ceil(q * this.total)
    let seen = 0
    for (let i = 0; i < HIST_BUCKETS; i++) {
      seen += this.counts[i]
      if (seen >= rank) return i < FINE_BUCKETS ? +((i + 1) * FINE_STEP_MS).toFixed(1) : FINE_MS + (i - FINE_BUCKETS + 1)
    }
    return null
  }

  summary () {
    return {
      p50: this.percentile(0.5),
      p90: this.percentile(0.9),
      p99: this.percentile(0.99),
      max: round(this.max, 1),
      mean: this.total ? round(this.sum / this.total, 2) : null,
      count: this.total
    }
  }
}

// ---- shared measurement state ----------------------------------------------
const SEQ_CAPACITY = MODE === 'full-speed' ? 4_000_000 : Math.ceil(((WARM_S + MEASURE_S + 5) * 1000) / INTERVAL_MS) + 1000
const sendTimes = Array.from({ length: W }, () => new Float64Array(SEQ_CAPACITY))
const windowFirstSeq = new Int32Array(W).fill(-1) // first seq sent in the measure window
const sentInWindow = new Int32Array(W)
const hist = new Histogram()
const crossHist = new Histogram() // deliveries between clients on different URLs
const presenceHist = new Histogram()
const arrivalsByNode = new Array(K).fill(0)
const stats = {
  phase: 'join',
  scored: 0, // deliveries of window updates, any time
  arrivalsInWindow: 0, // deliveries of any update that arrived during the window
  bytesInWindow: 0,
  messagesInWindow: 0,
  duplicates: 0,
  echoes: 0,
  awareness: 0,
  awarenessBytesInWindow: 0,
  syncStatus: 0,
  parseErrors: 0,
  unknown: 0,
  presenceScored: 0,
  presenceWithinDeadline: 0,
  closes: {}
}

// ---- presence state ---------------------------------------------------------
const PRESENCE_CAPACITY = Math.ceil(((WARM_S + MEASURE_S + 5) * 1000) / PRESENCE_MS) + 16
const presenceSend = MODE === 'presence' ? Array.from({ length: N }, () => new Float64Array(PRESENCE_CAPACITY)) : []
const presenceWindowFirst = new Int32Array(MODE === 'presence' ? N : 0).fill(-1)
const presenceWindowCount = new Int32Array(MODE === 'presence' ? N : 0)

// ---- messages --------------------------------------------------------------
const syncBody = (kind, payload) => {
  const enc = encoding.createEncoder()
  encoding.writeVarUint(enc, MSG_SYNC)
  encoding.writeVarUint(enc, kind)
  encoding.writeVarUint8Array(enc, payload)
  return encoding.toUint8Array(enc)
}
const EMPTY_DOC = new Y.Doc()
const EMPTY_STEP1 = syncBody(SYNC_STEP1, Y.encodeStateVector(EMPTY_DOC))
const EMPTY_STEP2 = syncBody(SYNC_STEP2, Y.encodeStateAsUpdate(EMPTY_DOC))

const prefixFor = name => {
  const enc = encoding.createEncoder()
  encoding.writeVarString(enc, name)
  return encoding.toUint8Array(enc)
}
const authBody = () => {
  const enc = encoding.createEncoder()
  encoding.writeVarUint(enc, MSG_AUTH)
  encoding.writeVarUint(enc, AUTH_TOKEN)
  encoding.writeVarString(enc, 'loadgen')
  return encoding.toUint8Array(enc)
}

const awarenessBody = (clientId, clock, state) => {
  const inner = encoding.createEncoder()
  encoding.writeVarUint(inner, 1)
  encoding.writeVarUint(inner, clientId)
  encoding.writeVarUint(inner, clock)
  encoding.writeVarString(inner, JSON.stringify(state))
  const enc = encoding.createEncoder()
  encoding.writeVarUint(enc, MSG_AWARENESS)
  encoding.writeVarUint8Array(enc, encoding.toUint8Array(inner))
  return encoding.toUint8Array(enc)
}

// ---- clients ---------------------------------------------------------------
let deliveryWaiter = null // full-speed: resolves when the first reader sees an update

class Client {
  constructor (index) {
    this.index = index
    this.node = index % K
    this.docIndex = index % D
    this.name = docName(this.docIndex)
    // Hocuspocus names the document in every message; its socket opens on the server's root.
    this.url = HOCUSPOCUS ? URLS[this.node] : `${URLS[this.node]}/${encodeURIComponent(this.name)}`
    this.prefix = HOCUSPOCUS ? prefixFor(this.name) : null
    this.writer = index < W ? index : -1
    this.lastSeq = new Int32Array(W).fill(-1)
    this.scored = 0
    this.synced = false
    this.syncMs = null
    this.step2Bytes = 0
    this.doc = null
    this.text = null
    this.seq = 0
    this.ws = null
    this.observer = false
    this.presenceClock = 0
    this.lastPresence = null
    if (this.writer >= 0) {
      this.doc = new Y.Doc()
      this.text = this.doc.getText('t')
      this.doc.on('update', update => this.send(syncBody(SYNC_UPDATE, update)))
    }
  }

  send (body) {
    if (this.ws.readyState !== WebSocket.OPEN) return
    if (this.prefix === null) {
      this.ws.send(body)
      return
    }
    const framed = new Uint8Array(this.prefix.length + body.length)
    framed.set(this.prefix, 0)
    framed.set(body, this.prefix.length)
    this.ws.send(framed)
  }

  join (timeoutMs) {
    const started = performance.now()
    return new Promise(resolve => {
      const timer = setTimeout(() => finish(false, 'sync timeout'), timeoutMs)
      let done = false
      const finish = (ok, why) => {
        if (done) return
        done = true
        clearTimeout(timer)
        if (ok) {
          this.syncMs = performance.now() - started
        } else {
          emit({ event: 'join_failed', client: this.index, reason: why })
          this.ws.terminate()
        }
        resolve(ok)
      }
      this.onSynced = () => finish(true)
      this.ws = new WebSocket(this.url, { perMessageDeflate: opts.deflate, maxPayload: MAX_PAYLOAD_BYTES })
      this.ws.binaryType = 'nodebuffer'
      this.ws.on('open', () => {
        if (HOCUSPOCUS) this.send(authBody())
        this.send(EMPTY_STEP1)
      })
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
    if (HOCUSPOCUS) decoding.readVarString(d) // document name
    const type = decoding.readVarUint(d)
    if (type === MSG_AWARENESS) {
      stats.awareness++
      if (stats.phase === 'measure') stats.awarenessBytesInWindow += data.length
      if (this.observer) this.readPresence(decoding.readVarUint8Array(d), now)
      return
    }
    if (type === MSG_AUTH) {
      if (HOCUSPOCUS && decoding.readVarUint(d) === AUTH_PERMISSION_DENIED) this.ws.close(1000, 'permission denied')
      return
    }
    if (type === MSG_HOCUSPOCUS_SYNC_STATUS && HOCUSPOCUS) {
      stats.syncStatus++
      return
    }
    if (type === MSG_QUERY_AWARENESS) return
    if (type !== MSG_SYNC) {
      stats.unknown++
      return
    }
    const kind = decoding.readVarUint(d)
    const payload = decoding.readVarUint8Array(d)
    if (kind === SYNC_STEP1) {
      this.send(this.doc ? syncBody(SYNC_STEP2, Y.encodeStateAsUpdate(this.doc, payload)) : EMPTY_STEP2)
    } else if (kind === SYNC_STEP2 && !this.synced) {
      this.synced = true // the initial state is not scored
      this.step2Bytes = payload.length
      this.onSynced()
    } else if (kind === SYNC_UPDATE || kind === SYNC_STEP2) {
      if (this.onStep2) {
        this.onStep2(payload)
        return
      }
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
    if (deliveryWaiter !== null && this.index === 1) {
      const wake = deliveryWaiter
      deliveryWaiter = null
      wake()
    }
    if (stats.phase === 'measure') {
      stats.arrivalsInWindow++
      arrivalsByNode[this.node]++
    }
    const first = windowFirstSeq[w]
    if (first < 0 || seq < first) return
    const ms = now - sendTimes[w][seq]
    this.scored++
    stats.scored++
    hist.record(ms)
    if (clients[w].node !== this.node) crossHist.record(ms)
  }

  write (now) {
    if (this.seq >= SEQ_CAPACITY || this.ws.readyState !== WebSocket.OPEN) return false
    const seq = this.seq++
    sendTimes[this.writer][seq] = now
    if (stats.phase === 'measure') {
      if (windowFirstSeq[this.writer] < 0) windowFirstSeq[this.writer] = seq
      sentInWindow[this.writer]++
    }
    this.text.insert(this.text.length, `${this.writer}.${seq};`)
    return true
  }

  sendPresence (now) {
    if (this.ws.readyState !== WebSocket.OPEN || this.presenceClock + 1 >= PRESENCE_CAPACITY) return
    const clock = ++this.presenceClock
    presenceSend[this.index][clock] = now
    if (stats.phase === 'measure') {
      if (presenceWindowFirst[this.index] < 0) presenceWindowFirst[this.index] = clock
      presenceWindowCount[this.index]++
    }
    this.send(awarenessBody(this.index + 1, clock, { user: { name: `client ${this.index}`, color: '#30bced' }, cursor: { anchor: clock, head: clock } }))
  }

  // Awareness update: varUint count, then (clientID, clock, JSON state) per entry.
  // A newer clock also counts as delivering the older ones it supersedes (coalescing).
  readPresence (update, now) {
    try {
      const d = decoding.createDecoder(update)
      const count = decoding.readVarUint(d)
      for (let i = 0; i < count; i++) {
        const sender = decoding.readVarUint(d) - 1
        const clock = decoding.readVarUint(d)
        decoding.readVarUint8Array(d) // the state, as a varString
        if (!(sender >= 0 && sender < N) || sender === this.index) continue
        const first = presenceWindowFirst[sender]
        const last = first + presenceWindowCount[sender] - 1
        for (let c = Math.max(this.lastPresence[sender] + 1, first); first > 0 && c <= Math.min(clock, last); c++) {
          const ms = now - presenceSend[sender][c]
          presenceHist.record(ms)
          stats.presenceScored++
          if (ms <= PRESENCE_DEADLINE_MS) stats.presenceWithinDeadline++
        }
        if (clock > this.lastPresence[sender]) this.lastPresence[sender] = clock
      }
    } catch (err) {
      if (stats.parseErrors++ === 0) process.stderr.write(`awareness parse error: ${err}\n`)
    }
  }
}

// ---- run -------------------------------------------------------------------
const clients = Array.from({ length: N }, (_, i) => new Client(i))

async function joinAll (list) {
  const joinStart = performance.now()
  const joinDeadline = joinStart + JOIN_TIMEOUT_S * 1000
  const remaining = () => Math.max(1, joinDeadline - performance.now())
  // One client per document first (creates the room), then the rest with bounded concurrency.
  const firsts = list.filter(c => c.index < D)
  const rest = list.filter(c => c.index >= D)
  let i = 0
  const one = async queue => { while (i < queue.length) await queue[i++].join(remaining()) }
  await Promise.all(Array.from({ length: Math.min(JOIN_CONCURRENCY, firsts.length) }, () => one(firsts)))
  i = 0
  await Promise.all(Array.from({ length: Math.min(JOIN_CONCURRENCY, rest.length) }, () => one(rest)))
  return (performance.now() - joinStart) / 1000
}

function cpuCores (cpu, seconds) {
  const cpuS = (cpu.user + cpu.system) / 1e6
  return { loadgen_cpu_s: round(cpuS), loadgen_cpu_cores: round(cpuS / seconds) }
}

function finish (result) {
  stats.phase = 'closing'
  emit({ event: 'result', mode: MODE, protocol: opts.protocol, urls: K, clients: N, docs: D, ...result })
  for (const c of clients) c.ws?.terminate()
  process.exit(0)
}

// Phases shared by fanout, full-speed and presence: warm-up, measure window, drain.
async function measured ({ startWriters, startPresence, pumpDone }) {
  const live = clients.filter(c => c.synced)
  const liveWriters = live.filter(c => c.writer >= 0)
  const stopWriters = startWriters ? startWriters(liveWriters) : () => {}
  const stopPresence = startPresence ? startPresence(live) : () => {}
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
  stopWriters()
  stopPresence()
  stats.phase = 'drain'
  const t1 = performance.now()
  const cpu = process.cpuUsage(cpu0)
  loopDelay.disable()
  emit({ event: 'measure_end' })
  if (pumpDone && pumpDone()) await pumpDone()

  // Expected deliveries: each window update reaches every other live client of its document.
  const liveInDoc = new Array(D).fill(0)
  for (const c of live) liveInDoc[c.docIndex]++
  const sentInDoc = new Array(D).fill(0)
  let sent = 0
  let expected = 0
  for (const c of liveWriters) {
    sent += sentInWindow[c.writer]
    sentInDoc[c.docIndex] += sentInWindow[c.writer]
    expected += sentInWindow[c.writer] * (liveInDoc[c.docIndex] - 1)
  }
  const observers = live.filter(c => c.observer)
  let presenceExpected = 0
  if (MODE === 'presence') {
    const presenceSent = live.reduce((a, c) => a + presenceWindowCount[c.index], 0)
    for (const o of observers) presenceExpected += presenceSent - presenceWindowCount[o.index]
  }
  const drainDeadline = performance.now() + DRAIN_S * 1000
  while ((stats.scored < expected || stats.presenceScored < presenceExpected) && performance.now() < drainDeadline) await sleep(50)
  const drainS = (performance.now() - t1) / 1000
  const measureS = (t1 - t0) / 1000
  const shares = live.map(c => {
    const own = c.writer >= 0 ? sentInWindow[c.writer] : 0
    const exp = sentInDoc[c.docIndex] - own
    return exp > 0 ? c.scored / exp : 1
  })
  return {
    synced: live.length,
    writers: liveWriters.length,
    interval_ms: MODE === 'full-speed' ? null : INTERVAL_MS,
    ws_extensions: live.length ? live[0].ws.extensions : '',
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
    arrivals_by_url: arrivalsByNode,
    messages_in_window: stats.messagesInWindow,
    bytes_in_window: stats.bytesInWindow,
    client_share_min: shares.length ? round(Math.min(...shares), 4) : null,
    latency_ms: hist.summary(),
    cross_url_latency_ms: K > 1 ? crossHist.summary() : null,
    presence: MODE === 'presence'
      ? {
          observers: observers.length,
          expected: presenceExpected,
          delivered: stats.presenceScored,
          within_1s: stats.presenceWithinDeadline,
          within_1s_share: presenceExpected > 0 ? round(stats.presenceWithinDeadline / presenceExpected, 4) : null,
          latency_ms: presenceHist.summary(),
          awareness_bytes_in_window: stats.awarenessBytesInWindow
        }
      : null,
    ...cpuCores(cpu, measureS),
    loadgen_loop_delay_p99_ms: round(loopDelay.percentile(99) / 1e6, 1),
    duplicates: stats.duplicates,
    echoes: stats.echoes,
    awareness_messages: stats.awareness,
    sync_status_messages: stats.syncStatus,
    parse_errors: stats.parseErrors,
    unknown_messages: stats.unknown,
    closes_by_code: stats.closes
  }
}

function intervalWriters (writers) {
  const timers = writers.map((c, k) => {
    const offset = (INTERVAL_MS * k) / Math.max(1, writers.length)
    let interval = null
    const starter = setTimeout(() => {
      interval = setInterval(() => c.write(performance.now()), INTERVAL_MS)
    }, offset)
    return () => { clearTimeout(starter); if (interval) clearInterval(interval) }
  })
  return () => timers.forEach(stop => stop())
}

async function runFanout () {
  const joinS = await joinAll(clients)
  const live = clients.filter(c => c.synced)
  emit({ event: 'joined', clients: N, synced: live.length, writers: live.filter(c => c.writer >= 0).length, extensions: live.length ? live[0].ws.extensions : '', join_s: round(joinS) })
  finish({ join_s: round(joinS), ...await measured({ startWriters: intervalWriters }) })
}

async function runFullSpeed () {
  const joinS = await joinAll(clients)
  const live = clients.filter(c => c.synced)
  emit({ event: 'joined', clients: N, synced: live.length, writers: 1, join_s: round(joinS) })
  const writer = clients[0]
  const reader = clients[1]
  let running = true
  let pump = null
  const startWriters = writers => {
    if (!writers.length || !reader.synced) return () => {}
    pump = (async () => {
      while (running && writer.ws.readyState === WebSocket.OPEN) {
        while (writer.seq - 1 - reader.lastSeq[0] < INFLIGHT && running) {
          if (!writer.write(performance.now())) { running = false; break }
        }
        await new Promise(resolve => {
          const timer = setTimeout(resolve, 1000)
          deliveryWaiter = () => { clearTimeout(timer); resolve() }
        })
      }
    })()
    return () => { running = false; if (deliveryWaiter) deliveryWaiter() }
  }
  const result = await measured({ startWriters, pumpDone: () => pump })
  finish({ join_s: round(joinS), inflight: INFLIGHT, ...result })
}

async function runPresence () {
  const observerCount = Math.min(toInt('observers', 1), N - 1)
  const step = (N - 1) / observerCount
  for (let k = 0; k < observerCount; k++) {
    const c = clients[1 + Math.floor(k * step)]
    c.observer = true
    c.lastPresence = new Int32Array(N)
  }
  const joinS = await joinAll(clients)
  const live = clients.filter(c => c.synced)
  emit({ event: 'joined', clients: N, synced: live.length, writers: 1, join_s: round(joinS) })
  const startPresence = list => {
    const timers = list.map((c, k) => {
      let interval = null
      const starter = setTimeout(() => {
        c.sendPresence(performance.now())
        interval = setInterval(() => c.sendPresence(performance.now()), PRESENCE_MS)
      }, (PRESENCE_MS * k) / list.length)
      return () => { clearTimeout(starter); if (interval) clearInterval(interval) }
    })
    return () => timers.forEach(stop => stop())
  }
  finish({ join_s: round(joinS), presence_interval_ms: PRESENCE_MS, ...await measured({ startWriters: intervalWriters, startPresence }) })
}

async function runIdle () {
  const joinS = await joinAll(clients)
  const live = clients.filter(c => c.synced)
  emit({ event: 'joined', clients: N, synced: live.length, join_s: round(joinS) })
  const cpu0 = process.cpuUsage()
  emit({ event: 'hold_start' })
  await sleep(HOLD_S * 1000)
  const open = clients.filter(c => c.ws && c.ws.readyState === WebSocket.OPEN).length
  emit({ event: 'hold_end', open })
  finish({ synced: live.length, open_at_end: open, join_s: round(joinS), hold_s: HOLD_S, ...cpuCores(process.cpuUsage(cpu0), HOLD_S), closes_by_code: stats.closes })
}

async function runJoinStorm () {
  if (!opts['doc-file']) throw new Error('--doc-file is required in join-storm mode')
  const meta = JSON.parse(fs.readFileSync(`${opts['doc-file']}.json`, 'utf8'))
  const blob = fs.readFileSync(`${opts['doc-file']}.bin`)
  const stateVector = Buffer.from(meta.state_vector_b64, 'base64')
  const seeder = clients[0]
  if (!await seeder.join(JOIN_TIMEOUT_S * 1000)) {
    finish({ error: 'seeding client could not join', synced: 0 })
    return
  }
  // Seed in chunks, then ask for the diff against the full state vector: servers handle
  // one socket's messages in order, so the (small) answer means every chunk was applied.
  const seedStart = performance.now()
  const confirmed = new Promise(resolve => { seeder.onStep2 = resolve })
  let offset = 0
  for (const length of meta.chunks) {
    seeder.send(syncBody(SYNC_UPDATE, blob.subarray(offset, offset + length)))
    offset += length
  }
  seeder.send(syncBody(SYNC_STEP1, stateVector))
  const ok = await Promise.race([confirmed.then(() => true), sleep(STORM_TIMEOUT_S * 1000).then(() => false)])
  seeder.onStep2 = null
  const seedS = (performance.now() - seedStart) / 1000
  if (!ok) {
    finish({ error: `seeding not confirmed after ${STORM_TIMEOUT_S} s`, seed_s: round(seedS), synced: 0 })
    return
  }
  emit({ event: 'seeded', bytes: blob.length, seed_s: round(seedS) })
  await sleep(500)
  const storm = clients.slice(1)
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  emit({ event: 'storm_start', clients: storm.length })
  const results = await Promise.all(storm.map(c => c.join(STORM_TIMEOUT_S * 1000)))
  const stormS = (performance.now() - t0) / 1000
  const synced = results.filter(Boolean).length
  emit({ event: 'storm_end', synced })
  const times = storm.filter(c => c.synced).map(c => c.syncMs).sort((a, b) => a - b)
  const pick = q => (times.length ? round(times[Math.min(times.length - 1, Math.ceil(q * times.length) - 1)] / 1000) : null)
  const bytes = storm.filter(c => c.synced).map(c => c.step2Bytes).sort((a, b) => a - b)
  finish({
    doc_bytes: blob.length,
    doc_chars: meta.chars,
    seed_s: round(seedS),
    storm_clients: storm.length,
    synced,
    all_synced_s: synced === storm.length ? round(times[times.length - 1] / 1000) : null,
    sync_s: { p50: pick(0.5), p99: pick(0.99), max: pick(1) },
    storm_s: round(stormS),
    step2_bytes_min: bytes.length ? bytes[0] : null,
    ...cpuCores(process.cpuUsage(cpu0), stormS),
    closes_by_code: stats.closes
  })
}

const runners = { fanout: runFanout, 'full-speed': runFullSpeed, presence: runPresence, idle: runIdle, 'join-storm': runJoinStorm }
await runners[MODE]()
