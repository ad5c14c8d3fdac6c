#!/usr/bin/env bash
# What a CI job runs on a pull request: plan to a file, render it as JSON,
# review it. Writes review.md (the comment, with its hidden marker),
# review.sarif and review.json next to the plan, and exits 2 when a finding
# reaches FAIL_ON, so a risky plan needs a human approval.
#
# Usage: review.sh [TERRAFORM_DIR] [FAIL_ON]   (FAIL_ON: low, medium, high, none)
set -euo pipefail
dir=${1:-.}
fail_on=${2:-high}
terraform=${TERRAFORM:-terraform}
review=${TANDEM_REVIEW:-tandem-review}

cd "$dir"
"$terraform" init -input=false -no-color >/dev/null
"$terraform" plan -input=false -no-color -lock-timeout=5m -out=tfplan
"$terraform" show -json tfplan > tfplan.json

"$review" tfplan.json --format=sarif --fail-on=none --out=review.sarif
"$review" tfplan.json --format=json --fail-on=none --out=review.json
status=0
"$review" tfplan.json --fail-on="$fail_on" --out=review.md || status=$?
cat review.md
# Post review.md as the pull request's comment, editing the earlier one
# whose first line is the same marker (github-actions.yml shows how).
exit "$status"
