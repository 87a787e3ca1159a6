#!/usr/bin/env bash
# Adds up cargo's per-binary "test result" lines of a test log into one closing line,
# so the whole suite's count is the last thing `make test` prints.
set -euo pipefail
log=${1:?usage: scripts/test-summary.sh LOG}
awk '/^test result:/ {
       for (i = 1; i <= NF; i++) {
         if ($(i+1) ~ /^passed/) passed += $i
         if ($(i+1) ~ /^failed/) failed += $i
         if ($(i+1) ~ /^ignored/) ignored += $i
       }
     }
     END { printf "summary: %d passed, %d failed, %d skipped\n", passed, failed, ignored }' "$log"
