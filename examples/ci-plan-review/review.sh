#!/usr/bin/env bash
# What a CI job runs on a pull request: plan to a file, render it as JSON,
# and post tandem-review's Markdown as the PR comment. The job fails (exit 2)
# when a finding reaches --fail-on, so a risky plan needs a human approval.
#
# Usage: review.sh [TERRAFORM_DIR] [FAIL_ON]   (FAIL_ON: low, medium, high)
set -euo pipefail
dir=${1:-.}
fail_on=${2:-high}
terraform=${TERRAFORM:-terraform}
review=${TANDEM_REVIEW:-tandem-review}

cd "$dir"
"$terraform" init -input=false -no-color >/dev/null
"$terraform" plan -input=false -no-color -lock-timeout=5m -out=tfplan
"$terraform" show -json tfplan > tfplan.json

set +e
"$review" tfplan.json --fail-on "$fail_on" --out review.md
status=$?
set -e
cat review.md
# e.g. with the GitHub CLI:  gh pr comment "$PR_NUMBER" --body-file review.md
exit $status
