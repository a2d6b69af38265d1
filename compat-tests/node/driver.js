#!/usr/bin/env node
// kafkajs driver for the kastle compat suite. Driven from pytest (compat_lib.py).
//
//   node driver.js <command> <spec.json>
//
// Writes JSON lines to stdout: {"type":"record",...} per consumed record and one final
// {"type":"result","ok":true|false,...}. kafkajs' own logs go to stderr.
//
// Commands:
//   produce   create the topic (admin.createTopics) if spec.createPartitions, then send
//             spec.messages with acks=-1, idempotent=false; reports ListOffsets + metadata.
//   consume   read spec.partitions partitions by *assignment* from offset 0 until each
//             partition reaches spec.until[p]. kafkajs has no assign() API (its consumer
//             always joins a group, which kastle does not implement yet), so this uses
//             kafkajs' own cluster/broker layer to issue the Fetch requests and decode
//             record batches: exactly what its group consumer does under the hood.
//   metadata  admin.listTopics / fetchTopicMetadata / fetchTopicOffsets for spec.topic.
'use strict'

const fs = require('fs')
const { Kafka, logLevel, Partitioners, CompressionTypes } = require('kafkajs')

const stderrLogger = () => ({ namespace, level, label, log }) => {
  const { message, ...rest } = log
  process.stderr.write(`[kafkajs ${label}] ${namespace}: ${message} ${JSON.stringify(rest)}\n`)
}

const out = []
function emit(obj) {
  out.push(JSON.stringify(obj))
}
async function flushOut() {
  const data = out.join('\n') + '\n'
  out.length = 0
  await new Promise((resolve) => process.stdout.write(data, resolve))
}

const b64 = (buf) => (buf === null || buf === undefined ? null : Buffer.from(buf).toString('base64'))
const unb64 = (s) => (s === null || s === undefined ? null : Buffer.from(s, 'base64'))

// spec.security (test_secure_clients.py): TLS with an optional client
// certificate, and SASL, in kafkajs' own options
function security(sec) {
  if (!sec || !sec.protocol || sec.protocol === 'PLAINTEXT') return {}
  const out = {}
  if (sec.protocol === 'SSL' || sec.protocol === 'SASL_SSL') {
    out.ssl = { ca: [fs.readFileSync(sec.ca, 'utf-8')] }
    if (sec.cert) {
      out.ssl.cert = fs.readFileSync(sec.cert, 'utf-8')
      out.ssl.key = fs.readFileSync(sec.key, 'utf-8')
    }
  }
  if (sec.protocol === 'SASL_PLAINTEXT' || sec.protocol === 'SASL_SSL') {
    out.sasl = { mechanism: sec.mechanism.toLowerCase(), username: sec.username, password: sec.password }
  }
  return out
}

function client(spec) {
  return new Kafka({
    ...security(spec.security),
    clientId: 'compat-kafkajs',
    brokers: [spec.bootstrap],
    logLevel: logLevel.WARN,
    logCreator: stderrLogger,
    connectionTimeout: 3000,
    requestTimeout: 30000,
    retry: { retries: 5, initialRetryTime: 100 },
  })
}

async function topicState(admin, topic) {
  const md = await admin.fetchTopicMetadata({ topics: [topic] })
  const offsets = await admin.fetchTopicOffsets(topic)
  return {
    partitions: md.topics[0].partitions.map((p) => ({
      partition: p.partitionId, leader: p.leader, replicas: p.replicas, isr: p.isr, error: p.partitionErrorCode,
    })),
    offsets: offsets.map((o) => ({ partition: o.partition, low: o.low, high: o.high, offset: o.offset })),
  }
}

async function produce(spec) {
  const kafka = client(spec)
  const admin = kafka.admin()
  await admin.connect()
  let created = null
  if (spec.createPartitions) {
    created = await admin.createTopics({
      topics: [{ topic: spec.topic, numPartitions: spec.createPartitions, replicationFactor: 1 }],
      waitForLeaders: true,
      timeout: 10000,
    })
    if (created !== true) throw new Error(`admin.createTopics returned ${created} (topic already existed?)`)
  }
  const producer = kafka.producer({
    idempotent: false,
    allowAutoTopicCreation: true,
    maxInFlightRequests: 1,
    createPartitioner: Partitioners.DefaultPartitioner,
  })
  await producer.connect()
  const chunk = spec.chunk || 2000
  let acked = 0
  const lastOffset = {}
  for (let i = 0; i < spec.messages.length; i += chunk) {
    const part = spec.messages.slice(i, i + chunk).map((m) => {
      const headers = {}
      for (const [k, v] of m.h) {
        const buf = unb64(v)
        if (k in headers) headers[k] = [].concat(headers[k], buf)
        else headers[k] = buf
      }
      return { key: unb64(m.k), value: unb64(m.v), headers, timestamp: String(m.t), partition: m.p }
    })
    // spec.gzip: kafkajs' only built-in codec (others need third-party plugins)
    const compression = spec.gzip ? CompressionTypes.GZIP : CompressionTypes.None
    const res = await producer.send({ topic: spec.topic, acks: -1, messages: part, compression })
    for (const r of res) {
      if (r.errorCode !== 0) throw new Error(`produce error ${JSON.stringify(r)}`)
      lastOffset[r.partition] = r.baseOffset
    }
    acked += part.length
  }
  await producer.disconnect()
  const state = await topicState(admin, spec.topic)
  await admin.disconnect()
  emit({ type: 'result', ok: true, acked, created, lastBaseOffset: lastOffset, ...state })
}

async function consume(spec) {
  const kafka = client(spec)
  const createCluster = Object.getOwnPropertySymbols(kafka).find((s) => String(s).includes('createCluster'))
  if (!createCluster) throw new Error('kafkajs internals changed: no createCluster symbol')
  const cluster = kafka[createCluster]({ allowAutoTopicCreation: false, isolationLevel: 0 })
  await cluster.connect()
  await cluster.addTargetTopic(spec.topic)
  const meta = cluster.findTopicPartitionMetadata(spec.topic)
  const until = spec.until || {}
  const next = {}
  const leaders = {}
  for (let p = 0; p < spec.partitions; p++) {
    next[p] = 0
    const pm = meta.find((m) => m.partitionId === p)
    if (!pm) throw new Error(`partition ${p} missing from metadata ${JSON.stringify(meta)}`)
    leaders[p] = pm.leader
  }
  const deadline = Date.now() + (spec.timeoutMs || 120000)
  let count = 0
  const pending = () => Object.keys(next).filter((p) => next[p] < (until[p] || 0))
  while (pending().length) {
    if (Date.now() > deadline) {
      throw new Error(`timeout: next offsets ${JSON.stringify(next)} wanted ${JSON.stringify(until)}`)
    }
    const byLeader = {}
    for (const p of pending()) (byLeader[leaders[p]] = byLeader[leaders[p]] || []).push(Number(p))
    for (const [nodeId, parts] of Object.entries(byLeader)) {
      const broker = await cluster.findBroker({ nodeId: Number(nodeId) })
      const { responses } = await broker.fetch({
        replicaId: -1,
        isolationLevel: 0,
        maxWaitTime: 500,
        minBytes: 1,
        maxBytes: 16 * 1024 * 1024,
        topics: [{ topic: spec.topic, partitions: parts.map((p) => ({ partition: p, fetchOffset: String(next[p]), maxBytes: 4 * 1024 * 1024 })) }],
      })
      for (const t of responses) {
        for (const pd of t.partitions) {
          if (pd.errorCode) throw new Error(`fetch error ${pd.errorCode} on partition ${pd.partition}`)
          for (const m of pd.messages) {
            const off = Number(m.offset)
            if (off < next[pd.partition] || m.isControlRecord) continue
            const h = []
            for (const [k, v] of Object.entries(m.headers || {})) {
              for (const one of [].concat(v)) h.push([k, b64(one)])
            }
            emit({ type: 'record', p: pd.partition, o: m.offset, k: b64(m.key), v: b64(m.value), h, t: m.timestamp })
            next[pd.partition] = off + 1
            count++
          }
        }
      }
      if (out.length > 5000) await flushOut()
    }
  }
  await cluster.disconnect()
  emit({ type: 'result', ok: true, count, next })
}

async function metadata(spec) {
  const kafka = client(spec)
  const admin = kafka.admin()
  await admin.connect()
  const topics = await admin.listTopics()
  const state = spec.topic ? await topicState(admin, spec.topic) : {}
  await admin.disconnect()
  emit({ type: 'result', ok: true, topics, ...state })
}

async function main() {
  const [cmd, specPath] = process.argv.slice(2)
  const spec = JSON.parse(fs.readFileSync(specPath, 'utf8'))
  const fn = { produce, consume, metadata }[cmd]
  if (!fn) throw new Error(`unknown command ${cmd}`)
  await fn(spec)
}

main()
  .then(flushOut)
  .catch(async (e) => {
    emit({ type: 'result', ok: false, error: String((e && e.stack) || e), kafkajsType: e && e.type })
    await flushOut()
    process.exitCode = 1
  })
