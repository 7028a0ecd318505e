#!/usr/bin/env bash
# make test: every test under -race, the integration tests (TestIntegration*) against the local
# emulators. Starts the emulators when they are not running and stops those it started on exit,
# failed or not. Ports: PUSHFN_SQS_PORT, PUSHFN_DYNAMODB_PORT.
set -euo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
GOTESTSUM=gotest.tools/gotestsum@v1.13.0 # pinned; installed into .pushfn/bin
state=.pushfn
mkdir -p "$state/bin"
pushfn=$state/bin/pushfn
"$GO" build -o "$pushfn" ./cmd/pushfn
"$GO" build -o "$state/bin/testsummary" ./dev/testsummary
GOBIN=$PWD/$state/bin "$GO" install "$GOTESTSUM"

started=()
stop_started() {
	if ((${#started[@]})); then
		echo "stopping the emulators this run started: ${started[*]}"
		"$pushfn" emulators down "${started[@]}"
		started=()
	fi
}
cleanup() {
	local status=$?
	stop_started || status=1
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

up_status=0
up=$("$pushfn" emulators up) || up_status=$?
echo "$up"
while read -r name word _; do
	if [[ $word == started ]]; then started+=("$name"); fi
done <<<"$up"
if ((up_status != 0)); then
	echo "make test: FAILED: the emulators could not start (the reason is above), so the integration tests cannot run" >&2
	exit 1
fi

eval "$("$pushfn" emulators env)"
export PUSHFN_INTEGRATION=1
echo "integration tests use AWS_ENDPOINT_URL_SQS=$AWS_ENDPOINT_URL_SQS AWS_ENDPOINT_URL_DYNAMODB=$AWS_ENDPOINT_URL_DYNAMODB"

json=$state/test.json
test_status=0
"$state/bin/gotestsum" --format pkgname --format-hide-empty-pkg --hide-summary=skipped --jsonfile "$json" \
	-- -race -count=1 ./... || test_status=$?
stop_started
# The counts come last: integration tests, then the plain "N passed, N failed, N skipped" line.
summary_status=0
"$state/bin/testsummary" "$json" || summary_status=$?
if ((test_status != 0 || summary_status != 0)); then
	exit 1
fi
