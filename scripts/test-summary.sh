#!/usr/bin/env bash
# Adds up cargo's per-binary "test result" lines of a test log into one closing line,
# so the whole suite's count is the last thing `make test` prints. A test binary that
# died before printing its result (a crash, a stack overflow) is counted and named too:
# its tests are neither passed nor failed, and the line must not look clean.
set -euo pipefail
log=${1:?usage: scripts/test-summary.sh LOG}
awk '/^test result:/ {
       for (i = 1; i <= NF; i++) {
         if ($(i+1) ~ /^passed/) passed += $i
         if ($(i+1) ~ /^failed/) failed += $i
         if ($(i+1) ~ /^ignored/) ignored += $i
       }
     }
     /^error: test failed, to rerun pass/ { binaries += 1 }
     END {
       printf "summary: %d passed, %d failed, %d skipped", passed, failed, ignored
       if (binaries > failed_binaries) printf ", %d test binaries failed (see \"error: test failed\" above)", binaries
       printf "\n"
     }' "$log"
