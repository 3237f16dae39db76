// Drives the official @google-cloud/tasks client (gRPC) against `python -m emulator`.
// Usage: node create_task.js HOST PORT PARENT QUEUE_ID TARGET_URL
// Prints one JSON line with what the server answered.
'use strict';
const {CloudTasksClient} = require('@google-cloud/tasks');
const {grpc} = require('google-gax');
const {PassThroughClient} = require('google-auth-library');

async function main() {
  const [host, port, parent, queueId, url] = process.argv.slice(2);
  const client = new CloudTasksClient({
    servicePath: host,
    port: Number(port),
    sslCreds: grpc.credentials.createInsecure(),
    authClient: new PassThroughClient(), // never probe the metadata server
  });
  const queueName = `${parent}/queues/${queueId}`;
  const [queue] = await client.createQueue({
    parent,
    queue: {name: queueName, rateLimits: {maxDispatchesPerSecond: 5}},
  });
  const [task] = await client.createTask({
    parent: queueName,
    task: {
      name: `${queueName}/tasks/from-node`,
      httpRequest: {
        url,
        httpMethod: 'POST',
        headers: {'Content-Type': 'application/json'},
        body: Buffer.from(JSON.stringify({from: 'node'})).toString('base64'),
      },
    },
  });
  let notFound = null;
  try {
    await client.getQueue({name: `${parent}/queues/missing-${queueId}`});
  } catch (error) {
    notFound = {code: error.code, details: error.details};
  }
  const [tasks] = await client.listTasks({parent: queueName, responseView: 'FULL'});
  console.log(JSON.stringify({
    queue: queue.name,
    burst: queue.rateLimits.maxBurstSize,
    task: task.name,
    listed: tasks.length,
    notFound,
  }));
  await client.close();
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
