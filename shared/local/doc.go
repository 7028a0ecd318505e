// Package local marks the line between what ships and what does not: the packages under
// shared/local serve local runs, the developer CLI and tests only (the Lambda Runtime API, the
// API Gateway translation, the event source mapping, the emulators, the template reader, the
// push receiver, the local EventBridge endpoint, the status page, the counting proxy in front of the
// emulators, the cost model and the integration-test helper). No function deployed to Lambda may link them;
// this package's test checks that for every function under functions/.
package local
