#!/usr/bin/env node
// kafkajs idempotent producer driver for compat-tests/test_idempotence.py.
//
//   node idempotent.js <spec.json>
//
// spec: { bootstrap, topic, partitions, count (stop after this many messages, 0 = no limit),
//         stopFile (stop producing once this file exists), chunk (messages per send),
//         maxInFlightRequests }
//
// Sends messages i = 0, 1, 2, ... (value "kjs-<i>", header idx=<i>, partition i % partitions)
// with an idempotent producer (acks=-1), one send() of `chunk` messages at a time, and writes
// JSON lines to stdout:
//   {"type":"ack","from":i,"to":j,"offsets":{partition: baseOffset}}   messages [i, j) acknowledged
//   {"type":"fail","from":i,"to":j,"error":"...","name":"..."}          send() rejected them
//   {"type":"result","ok":true,"sent":n,"acked":m,"failed":k}          at the end
// kafkajs' own logs go to stderr.
'use strict'

const fs = require('fs')
const { Kafka, logLevel } = require('kafkajs')

function line(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n')
}

const logCreator = () => ({ namespace, level, label, log }) => {
  const { message, ...rest } = log
  process.stderr.write(`[kafkajs ${label}] ${namespace}: ${message} ${JSON.stringify(rest)}\n`)
}

async function main() {
  const spec = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'))
  const kafka = new Kafka({
    clientId: 'compat-kafkajs-idempotent',
    brokers: [spec.bootstrap],
    logLevel: logLevel.WARN,
    logCreator,
    connectionTimeout: 1000,
    requestTimeout: 5000,
    retry: { retries: 30, initialRetryTime: 100, maxRetryTime: 1000 },
  })
  const producer = kafka.producer({
    idempotent: true,
    maxInFlightRequests: spec.maxInFlightRequests || 5,
    allowAutoTopicCreation: false,
    retry: { retries: Number.MAX_SAFE_INTEGER, initialRetryTime: 100, maxRetryTime: 1000 },
  })
  await producer.connect()
  const chunk = spec.chunk || 20
  let i = 0
  let acked = 0
  let failed = 0
  const stopped = () => (spec.count && i >= spec.count) || (spec.stopFile && fs.existsSync(spec.stopFile))
  while (!stopped()) {
    const from = i
    const to = spec.count ? Math.min(from + chunk, spec.count) : from + chunk
    const messages = []
    for (let k = from; k < to; k++) {
      messages.push({ value: `kjs-${k}`, headers: { idx: String(k) }, partition: k % spec.partitions })
    }
    i = to
    try {
      const res = await producer.send({ topic: spec.topic, acks: -1, messages })
      const offsets = {}
      for (const r of res) {
        if (r.errorCode !== 0) throw new Error(`produce error ${JSON.stringify(r)}`)
        offsets[r.partition] = r.baseOffset
      }
      acked += to - from
      line({ type: 'ack', from, to, offsets })
    } catch (e) {
      failed += to - from
      line({ type: 'fail', from, to, error: String((e && e.message) || e), name: e && e.name })
    }
  }
  await producer.disconnect()
  line({ type: 'result', ok: true, sent: i, acked, failed })
}

main().catch((e) => {
  line({ type: 'result', ok: false, error: String((e && e.stack) || e) })
  process.exitCode = 1
})
