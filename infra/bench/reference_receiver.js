#!/usr/bin/env node
// A Twilio Event Streams receiver written the way a team would by hand in Node, the second
// peer of infra/bench/compare_receiver.sh (the first: reference_receiver.py).
//
// Per delivery, what a typical Node webhook handler does:
//   1. twilio.validateRequestWithBody(authToken, signature, url, body) (Twilio's official
//      helper; it checks the URL's bodySHA256 against the body);
//   2. JSON.parse(body): a list of CloudEvents;
//   3. per event: DynamoDB PutItem with ConditionExpression attribute_not_exists(pk) on the
//      event id (dedup); if it succeeds, Kinesis PutRecord of the event (partition key: the
//      event's source); a ConditionalCheckFailedException means a duplicate: skip.
// One delivery at a time (as one Lambda instance handles them), SDK clients created once
// (AWS SDK v3 keeps connections alive by default).
//
//   NODE_PATH=<npm ci dir>/node_modules node reference_receiver.js --cases cases.jsonl --token T
//
// Prints one JSON object: deliveries, ok, new_events, ns_per_delivery (wall clock),
// cpu_us_per_delivery (this process's CPU time, the emulator's excluded), peak_rss_kb.
"use strict";

const fs = require("node:fs");
const twilio = require("twilio");
const {
  DynamoDBClient,
  PutItemCommand,
  CreateTableCommand,
  ConditionalCheckFailedException,
} = require("@aws-sdk/client-dynamodb");
const {
  KinesisClient,
  PutRecordCommand,
  CreateStreamCommand,
  DescribeStreamSummaryCommand,
} = require("@aws-sdk/client-kinesis");
const { NodeHttpHandler } = require("@smithy/node-http-handler");

function flag(name, fallback) {
  const i = process.argv.indexOf(name);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

async function createResources(ddb, kinesis, table, stream) {
  await ddb.send(
    new CreateTableCommand({
      TableName: table,
      BillingMode: "PAY_PER_REQUEST",
      AttributeDefinitions: [{ AttributeName: "pk", AttributeType: "S" }],
      KeySchema: [{ AttributeName: "pk", KeyType: "HASH" }],
    }),
  );
  await kinesis.send(new CreateStreamCommand({ StreamName: stream, ShardCount: 1 }));
  for (let i = 0; i < 100; i++) {
    const out = await kinesis.send(new DescribeStreamSummaryCommand({ StreamName: stream }));
    if (out.StreamDescriptionSummary.StreamStatus === "ACTIVE") return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`stream ${stream} never became ACTIVE`);
}

// Returns [HTTP status, new events].
async function handle(token, ddb, kinesis, table, stream, c) {
  if (!twilio.validateRequestWithBody(token, c.signature, c.url, c.body)) return [403, 0];
  let events;
  try {
    events = JSON.parse(c.body);
  } catch {
    return [400, 0];
  }
  let fresh = 0;
  for (const event of events) {
    try {
      await ddb.send(
        new PutItemCommand({
          TableName: table,
          Item: {
            pk: { S: event.id },
            expires_at: { N: String(Math.floor(Date.now() / 1000) + 7 * 86400) },
          },
          ConditionExpression: "attribute_not_exists(pk)",
        }),
      );
    } catch (e) {
      if (e instanceof ConditionalCheckFailedException || e.name === "ConditionalCheckFailedException") {
        continue; // a duplicate
      }
      return [503, fresh];
    }
    await kinesis.send(
      new PutRecordCommand({
        StreamName: stream,
        Data: Buffer.from(JSON.stringify(event)),
        PartitionKey: event.source || event.id,
      }),
    );
    fresh += 1;
  }
  return [200, fresh];
}

async function main() {
  const casesPath = flag("--cases");
  const token = flag("--token", "compare-token");
  if (!casesPath) throw new Error("usage: reference_receiver.js --cases FILE --token T");
  if (!process.env.AWS_ENDPOINT_URL) throw new Error("set AWS_ENDPOINT_URL to the emulator");
  const cases = fs
    .readFileSync(casesPath, "utf8")
    .split("\n")
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l));
  const endpoint = process.env.AWS_ENDPOINT_URL;
  const ddb = new DynamoDBClient({ endpoint });
  // The Kinesis client speaks HTTP/2 by default (for SubscribeToShard); the emulator speaks
  // HTTP/1.1, as the DynamoDB client does. NodeHttpHandler keeps connections alive.
  const kinesis = new KinesisClient({ endpoint, requestHandler: new NodeHttpHandler() });
  const table = `cmp-node-dedup-${process.pid}`;
  const stream = `cmp-node-events-${process.pid}`;
  await createResources(ddb, kinesis, table, stream);
  const rssBefore = process.resourceUsage().maxRSS;
  let ok = 0;
  let newEvents = 0;
  const cpuBefore = process.cpuUsage();
  const started = process.hrtime.bigint();
  for (const c of cases) {
    const [status, fresh] = await handle(token, ddb, kinesis, table, stream, c);
    if (status === 200) {
      ok += 1;
      newEvents += fresh;
    }
  }
  const elapsed = Number(process.hrtime.bigint() - started);
  const cpu = process.cpuUsage(cpuBefore);
  const n = Math.max(1, cases.length);
  console.log(
    JSON.stringify({
      receiver: "node-twilio-aws-sdk-v3",
      deliveries: cases.length,
      ok,
      new_events: newEvents,
      elapsed_s: elapsed / 1e9,
      ns_per_delivery: elapsed / n,
      cpu_us_per_delivery: (cpu.user + cpu.system) / n,
      rss_kb_before: rssBefore,
      peak_rss_kb: process.resourceUsage().maxRSS,
    }),
  );
  return ok === cases.length ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(`error: ${e.stack || e}`);
    process.exit(2);
  },
);
