#!/usr/bin/env node
// kafkajs group member for compat-tests/test_groups.py.
//
//   node groups.js '<spec json>'   spec: {bootstrap, topic, group, stopFile, name}
//
// Joins spec.group, consumes spec.topic from the earliest offset, commits each
// message's offset + 1 as it goes, and prints one JSON line per record
// ({"type":"record","partition":..,"offset":..,"value":..}). Leaves the group
// and exits 0 once spec.stopFile exists.
'use strict'

const fs = require('fs')
const { Kafka, logLevel } = require('kafkajs')

async function main() {
  const spec = JSON.parse(process.argv[2])
  const kafka = new Kafka({
    clientId: spec.name,
    brokers: [spec.bootstrap],
    logLevel: logLevel.WARN,
    retry: { retries: 10, initialRetryTime: 100 },
  })
  const consumer = kafka.consumer({
    groupId: spec.group,
    sessionTimeout: 6000,
    heartbeatInterval: 300,
    rebalanceTimeout: 10000,
    maxWaitTimeInMs: 100,
  })
  await consumer.connect()
  await consumer.subscribe({ topic: spec.topic, fromBeginning: true })
  await consumer.run({
    autoCommit: false,
    eachMessage: async ({ topic, partition, message }) => {
      process.stdout.write(JSON.stringify({
        type: 'record', partition, offset: message.offset, value: message.value.toString(),
      }) + '\n')
      await consumer.commitOffsets([
        { topic, partition, offset: (BigInt(message.offset) + 1n).toString() },
      ])
    },
  })
  while (!fs.existsSync(spec.stopFile)) {
    await new Promise((r) => setTimeout(r, 100))
  }
  await consumer.disconnect()
  process.stdout.write(JSON.stringify({ type: 'result', ok: true }) + '\n')
}

main().catch((e) => {
  process.stderr.write(`groups.js failed: ${e.stack || e}\n`)
  process.exit(1)
})
