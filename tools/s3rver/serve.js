// Start s3rver (@20minutes/s3rver) for the tests: node serve.js DIRECTORY PORT
// The access key pair is read from S3RVER_ACCESS_KEY / S3RVER_SECRET_KEY; s3rver's built-in
// default pair (S3RVER / S3RVER) is revoked so only the given keys sign valid requests.
'use strict';

const S3rver = require('@20minutes/s3rver');
const AWSAccount = require('@20minutes/s3rver/lib/models/account');

const [directory, port] = process.argv.slice(2);
const accessKey = process.env.S3RVER_ACCESS_KEY;
const secretKey = process.env.S3RVER_SECRET_KEY;
if (!directory || !port || !accessKey || !secretKey) {
  console.error('usage: S3RVER_ACCESS_KEY=.. S3RVER_SECRET_KEY=.. node serve.js DIRECTORY PORT');
  process.exit(2);
}
AWSAccount.DUMMY_ACCOUNT.revokeAccessKey('S3RVER');
AWSAccount.DUMMY_ACCOUNT.createKeyPair(accessKey, secretKey);

const server = new S3rver({ address: '127.0.0.1', port: Number(port), directory, silent: true, vhostBuckets: false });
server.run((error, address) => {
  if (error) {
    console.error(`s3rver did not start: ${error}`);
    process.exit(1);
  }
  console.log(`s3rver listening on ${address.address}:${address.port}`);
});
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
