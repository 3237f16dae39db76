// The shapes of Google's Node samples (nodejs-docs-samples cloud-tasks/snippets: createQueue,
// createHttpTask, createHttpTaskWithToken, createTask (App Engine), listQueues, deleteQueue)
// and a v2beta3 batch with its long-running operation, through the official
// @google-cloud/tasks client over gRPC against `python -m emulator`.
// Usage: node samples.js HOST PORT PROJECT LOCATION SUFFIX TARGET_URL
// Prints one JSON line with what the server answered.
'use strict';
const {CloudTasksClient, v2beta3} = require('@google-cloud/tasks');
const {grpc} = require('google-gax');
const {PassThroughClient} = require('google-auth-library');

async function main() {
  const [host, port, project, location, suffix, url] = process.argv.slice(2);
  const options = {
    servicePath: host,
    port: Number(port),
    sslCreds: grpc.credentials.createInsecure(),
    authClient: new PassThroughClient(), // never probe the metadata server
  };
  const client = new CloudTasksClient(options);
  const beta = new v2beta3.CloudTasksClient(options);
  const out = {};

  // createQueue.js (its appEngineHttpQueue is a v2beta3 field: a v2 client drops it)
  const queueName = client.queuePath(project, location, `node-${suffix}`);
  const [queue] = await client.createQueue({
    parent: client.locationPath(project, location),
    queue: {name: queueName, appEngineHttpQueue: {appEngineRoutingOverride: {service: 'default'}}},
  });
  out.queue = queue.name;

  // createHttpTask.js
  const [httpTask] = await client.createTask({
    parent: queueName,
    task: {
      httpRequest: {
        headers: {'Content-Type': 'text/plain'},
        httpMethod: 'POST',
        url: `${url}/node-http`,
        body: Buffer.from('Hello, World!').toString('base64'),
      },
    },
  });
  out.httpTask = httpTask.name;

  // createHttpTaskWithToken.js (no audience: the task URL is the audience)
  await client.createTask({
    parent: queueName,
    task: {
      httpRequest: {
        headers: {'Content-Type': 'text/plain'},
        httpMethod: 'POST',
        url: `${url}/node-token`,
        oidcToken: {serviceAccountEmail: `client@${project}.iam.gserviceaccount.com`},
        body: Buffer.from('Hello, World!').toString('base64'),
      },
    },
  });

  // createTask.js: an App Engine task
  const [appTask] = await client.createTask({
    parent: queueName,
    task: {
      appEngineHttpRequest: {
        headers: {'Content-Type': 'text/plain'},
        httpMethod: 'POST',
        relativeUri: '/log_payload',
        body: Buffer.from('Hello, App Engine!').toString('base64'),
      },
    },
  });
  out.appEngineHost = appTask.appEngineHttpRequest.appEngineRouting.host;

  // listQueues.js
  const [queues] = await client.listQueues({parent: client.locationPath(project, location)});
  out.listed = queues.map((q) => q.name);

  // v2beta3: a queue-level HTTP target, then BatchCreateTasks and its operation.
  const betaQueue = beta.queuePath(project, location, `node-beta-${suffix}`);
  const target = new URL(url);
  const [routed] = await beta.createQueue({
    parent: beta.locationPath(project, location),
    queue: {
      name: betaQueue,
      httpTarget: {
        uriOverride: {
          scheme: 'HTTP',
          host: target.hostname,
          port: Number(target.port),
          pathOverride: {path: '/node-batch'},
        },
      },
    },
  });
  out.routedPort = Number(routed.httpTarget.uriOverride.port);
  const [operation] = await beta.batchCreateTasks({
    parent: betaQueue,
    requests: [0, 1, 2].map((n) => ({
      parent: betaQueue,
      task: {
        name: `${betaQueue}/tasks/batch-${n}`,
        httpRequest: {url: `http://unused.invalid/${n}`, body: Buffer.from(`b${n}`).toString('base64')},
      },
    })),
  });
  const [response, metadata] = await operation.promise();
  out.batchTasks = response.tasks.map((t) => t.name);
  out.batchState = metadata.state;
  const checked = await beta.checkBatchCreateTasksProgress(operation.name);
  out.checkedDone = checked.done;
  const [deleteOperation] = await beta.batchDeleteTasks({
    parent: betaQueue,
    names: [`${betaQueue}/tasks/missing`],
  });
  try {
    await deleteOperation.promise();
    out.deleteError = null;
  } catch (error) {
    out.deleteError = {code: error.code, message: error.message};
  }

  // deleteQueue.js
  await client.deleteQueue({name: queueName});
  let gone = null;
  try {
    await client.getQueue({name: queueName});
  } catch (error) {
    gone = error.code;
  }
  out.deletedCode = gone;

  console.log(JSON.stringify(out));
  await client.close();
  await beta.close();
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
